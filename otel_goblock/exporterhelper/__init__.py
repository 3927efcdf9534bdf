"""The collector's exporterhelper: sending queue, retry on failure, timeout, telemetry."""

from otel_goblock.exporterhelper.config import QueueConfig, RetryConfig, TimeoutConfig
from otel_goblock.exporterhelper.errors import ExportFailure, from_grpc, from_http
from otel_goblock.exporterhelper.helper import ExporterHelper, SendFunc

__all__ = [
    "ExportFailure",
    "ExporterHelper",
    "QueueConfig",
    "RetryConfig",
    "SendFunc",
    "TimeoutConfig",
    "from_grpc",
    "from_http",
]
