"""The `otlp` receiver: OTLP/gRPC and OTLP/HTTP into the pipeline (see README.md)."""
