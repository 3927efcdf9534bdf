"""otel-goblock: an OpenTelemetry pipeline that says where a Go span's wall time went."""

__version__ = "0.1.0"
