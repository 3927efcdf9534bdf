"""Equivalent pipeline configs for otel-goblock and the OpenTelemetry Collector.

Why one module: the comparison is only fair if both systems run the same pipeline with the
same knobs (batch size and timeout, queue, compression, memory limits). Both configs are
built from one `PipelineSpec`, so a knob cannot drift between the two legs. The only
differences are the self-telemetry sections, whose shapes differ between the products
(otel-goblock: `metrics.address`; collector v0.165: `metrics.readers[].pull.exporter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class MemoryLimit:
    """memory_limiter settings (collector semantics: soft limit = limit - spike)."""

    limit_mib: int
    spike_limit_mib: int
    check_interval: str = "100ms"


@dataclass(frozen=True)
class PipelineSpec:
    """otlp (gRPC) → [memory_limiter] → batch → otlp_grpc, on loopback ports."""

    receiver_port: int
    sink_endpoint: str
    telemetry_port: int
    compression: str = "none"
    send_batch_size: int = 8192
    batch_timeout: str = "200ms"
    queue_size: int = 1000
    num_consumers: int = 10
    memory_limit: MemoryLimit | None = None
    max_concurrent_streams: int = 0  # receiver gRPC option; 0 = the server's default


def _pipeline_body(spec: PipelineSpec) -> dict[str, Any]:
    processors: dict[str, Any] = {
        "batch": {"send_batch_size": spec.send_batch_size, "timeout": spec.batch_timeout}
    }
    chain = ["batch"]
    if spec.memory_limit is not None:
        ml = spec.memory_limit
        processors["memory_limiter"] = {
            "check_interval": ml.check_interval,
            "limit_mib": ml.limit_mib,
            "spike_limit_mib": ml.spike_limit_mib,
        }
        chain = ["memory_limiter", "batch"]
    grpc: dict[str, Any] = {"endpoint": f"127.0.0.1:{spec.receiver_port}"}
    if spec.max_concurrent_streams:
        grpc["max_concurrent_streams"] = spec.max_concurrent_streams
    return {
        "receivers": {"otlp": {"protocols": {"grpc": grpc}}},
        "processors": processors,
        "exporters": {
            "otlp_grpc": {
                "endpoint": spec.sink_endpoint,
                "tls": {"insecure": True},
                "compression": spec.compression,
                "sending_queue": {
                    "enabled": True,
                    "queue_size": spec.queue_size,
                    "num_consumers": spec.num_consumers,
                },
            }
        },
        "service": {
            "pipelines": {
                "traces": {"receivers": ["otlp"], "processors": chain, "exporters": ["otlp_grpc"]}
            }
        },
    }


def goblock_config(spec: PipelineSpec) -> dict[str, Any]:
    """Config for `otel-goblock run --config`."""
    cfg = _pipeline_body(spec)
    cfg["service"]["telemetry"] = {
        "logs": {"level": "warn"},
        "metrics": {"address": f"127.0.0.1:{spec.telemetry_port}"},
    }
    return cfg


def collector_config(spec: PipelineSpec) -> dict[str, Any]:
    """Config for the otelcol-bench binary (collector v0.165.0)."""
    cfg = _pipeline_body(spec)
    cfg["service"]["telemetry"] = {
        "logs": {"level": "warn"},
        "metrics": {
            "level": "normal",
            "readers": [
                {
                    "pull": {
                        "exporter": {
                            "prometheus": {"host": "127.0.0.1", "port": spec.telemetry_port}
                        }
                    }
                }
            ],
        },
    }
    return cfg
