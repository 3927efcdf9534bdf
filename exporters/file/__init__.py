"""Exporter file: OTLP/JSON lines (or length-prefixed protobuf), rotated by size."""
