"""Shared helpers of the hardening tests: real pipelines from tests/pipelines.py, raw OTLP
requests sent with grpc and HTTP so the exact status code can be asserted."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pipelines import Pipeline, free_port, parse_prometheus

__all__ = ["Pipeline", "file_spans", "free_port", "grpc_export", "parse_prometheus", "request"]

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def request(n_spans: int = 3, value: str = "v", first_id: int = 1) -> bytes:
    """A serialized ExportTraceServiceRequest; every span carries attribute `probe=value`."""
    now = time.time_ns()
    spans = [
        Span(
            trace_id=bytes(range(16)),
            span_id=(first_id + i).to_bytes(8, "big"),
            name=f"s{i}",
            start_time_unix_nano=now,
            end_time_unix_nano=now + 1000,
            attributes=[KeyValue(key="probe", value=AnyValue(string_value=value))],
        )
        for i in range(n_spans)
    ]
    req = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )
    return req.SerializeToString()


def grpc_export(
    address: str, body: bytes, metadata: tuple[tuple[str, str], ...] = ()
) -> grpc.StatusCode:
    """One raw Export call; the status code it ended with."""
    with grpc.insecure_channel(address) as ch:
        call = ch.unary_unary(TRACES)
        try:
            call(body, metadata=metadata, timeout=10)
        except grpc.RpcError as e:
            return e.code()
    return grpc.StatusCode.OK


def file_spans(path: Path) -> int:
    """Spans written by a file exporter (json format)."""
    from otel_goblock.receivers.otlp.otlpjson import decode_traces

    n = 0
    if not path.exists():
        return 0
    for line in path.read_text().splitlines():
        if '"resourceSpans"' in line:
            for rs in decode_traces(line).resource_spans:
                for ss in rs.scope_spans:
                    n += len(ss.spans)
    return n
