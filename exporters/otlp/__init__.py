"""Exporters otlp_grpc (alias otlp) and otlp_http (alias otlphttp)."""
