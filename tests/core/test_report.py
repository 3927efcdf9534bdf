"""`otel-goblock report` on a file the file exporter could have written: one row per span
name (client spans of a gRPC method apart from its server spans), and the time split only
over the breakdown's categories."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otel_goblock.receivers.otlp.otlpjson import encode_traces

from otel_goblock.report import render, summarize

MS = 1_000_000


def _span(ss: Any, kind: int, cause: str, attrs: dict[str, float]) -> None:
    s = ss.spans.add(name="goblock.demo.Demo/Upload", kind=kind)
    s.trace_id, s.span_id = b"\x01" * 16, bytes([kind]) * 8
    s.start_time_unix_nano, s.end_time_unix_nano = 1, 1 + 100 * MS
    kv = s.attributes.add(key="goblock.cause")
    kv.value.string_value = cause
    for k, v in attrs.items():
        kv = s.attributes.add(key=k)
        kv.value.double_value = v


def test_client_and_server_spans_of_a_method_are_reported_apart(tmp_path: Path) -> None:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add(key="service.name")
    kv.value.string_value = "demo"
    ss = rs.scope_spans.add()
    _span(
        ss,
        Span.SPAN_KIND_CLIENT,
        "grpc_flow_control",
        {
            "goblock.grpc.flow_control.ms": 80.0,
            "goblock.grpc.flow_control.wait.ms": 85.0,  # not a category of the breakdown
            "goblock.on_cpu.ms": 20.0,
        },
    )
    _span(ss, Span.SPAN_KIND_SERVER, "sleep", {"goblock.park.sleep.ms": 100.0})
    path = tmp_path / "traces.jsonl"
    path.write_bytes(encode_traces(req) + b"\n")

    stats, spans, bad = summarize(path)
    assert (spans, bad) == (2, 0)
    client = stats[("demo", "goblock.demo.Demo/Upload (client)")]
    server = stats[("demo", "goblock.demo.Demo/Upload")]
    assert dict(client.causes) == {"grpc_flow_control": 1}
    assert dict(client.category_ms) == {"grpc.flow_control": 80.0, "on_cpu": 20.0}
    assert dict(server.causes) == {"sleep": 1}
    out = io.StringIO()
    render(path, out)
    assert "grpc.flow_control.wait" not in out.getvalue()
    assert "Demo/Upload (client)" in out.getvalue()
