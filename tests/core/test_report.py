"""`otel-goblock report` on a file the file exporter could have written: one row per span
name (client spans of a gRPC method apart from its server spans), and the time split only
over the breakdown's categories."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otel_goblock.receivers.otlp.otlpjson import encode_traces

from otel_goblock.report import FileSource, render, summarize

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

    src = FileSource(path)
    summary = summarize(src.rows)
    stats = summary.stats
    assert (summary.spans, src.malformed) == (2, 0)
    client = stats[("demo", "goblock.demo.Demo/Upload (client)")]
    server = stats[("demo", "goblock.demo.Demo/Upload")]
    assert dict(client.causes) == {"grpc_flow_control": 1}
    assert dict(client.category_ms) == {"grpc.flow_control": 80.0, "on_cpu": 20.0}
    assert dict(server.causes) == {"sleep": 1}
    out = io.StringIO()
    render(FileSource(path), out)
    assert "grpc.flow_control.wait" not in out.getvalue()
    assert "Demo/Upload (client)" in out.getvalue()


def _traces(tmp_path: Path) -> Path:
    """Enriched server spans /x 30 ms, /y 100 ms, /x 60 ms, /x 50 ms; the 100 ms one has
    an episode child and a grandchild; one malformed line."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add(key="service.name")
    kv.value.string_value = "svc"
    ss = rs.scope_spans.add()
    for i, (name, ms) in enumerate((("x", 30), ("y", 100), ("x", 60), ("x", 50)), start=1):
        s = ss.spans.add(name=f"GET /{name}", kind=Span.SPAN_KIND_SERVER)
        s.trace_id, s.span_id = bytes([i]) * 16, bytes([i]) * 8
        s.start_time_unix_nano, s.end_time_unix_nano = 1000 * MS, (1000 + ms) * MS
        for k, v in (("goblock.cause", "lock"), ("goblock.diagnosis", f"waited {ms} ms")):
            a = s.attributes.add(key=k)
            a.value.string_value = v
        for k, v in (("goblock.park.sync_mutex_lock.ms", ms * 0.75), ("goblock.on_cpu.ms", ms / 4)):
            a = s.attributes.add(key=k)
            a.value.double_value = v
    ep = ss.spans.add(name="goblock: lock wait", kind=Span.SPAN_KIND_INTERNAL)
    ep.trace_id, ep.span_id, ep.parent_span_id = b"\x02" * 16, b"\x20" * 8, b"\x02" * 8
    ep.start_time_unix_nano, ep.end_time_unix_nano = 1020 * MS, 1095 * MS
    gc = ss.spans.add(name="SELECT", kind=Span.SPAN_KIND_CLIENT)
    gc.trace_id, gc.span_id, gc.parent_span_id = b"\x02" * 16, b"\x21" * 8, b"\x20" * 8
    gc.start_time_unix_nano, gc.end_time_unix_nano = 1030 * MS, 1040 * MS
    path = tmp_path / "traces.jsonl"
    path.write_bytes(encode_traces(req) + b"\n" + b'{"resourceSpans": [oops\n')
    return path


def test_slowest_spans_come_with_their_trace_as_a_waterfall(tmp_path: Path) -> None:
    out = io.StringIO()
    assert render(FileSource(_traces(tmp_path)), out, fmt="json", top=2) == 0
    doc = json.loads(out.getvalue())
    assert doc["malformed_lines"] == 1 and doc["spans"] == 6
    # one per span name: /x is drawn by its 60 ms span, its 50 ms one is left out
    assert [(s["name"], s["duration_ms"]) for s in doc["slowest"]] == [
        ("GET /y", 100.0),
        ("GET /x", 60.0),
    ]
    top = doc["slowest"][0]
    assert top["trace_id"] == "02" * 16 and top["diagnosis"] == "waited 100 ms"
    assert top["categories_ms"] == {"park.sync_mutex_lock": 75.0, "on_cpu": 25.0}
    assert [(c["depth"], c["name"], c["offset_ms"], c["duration_ms"]) for c in top["spans"]] == [
        (1, "goblock: lock wait", 20.0, 75.0),
        (2, "SELECT", 30.0, 10.0),
    ]
    assert doc["slowest"][1]["spans"] == []
    row = next(n for n in doc["names"] if n["name"] == "GET /x")
    assert (row["n"], row["cause"], row["causes"]) == (3, "lock", {"lock": 3})
    out = io.StringIO()
    render(FileSource(tmp_path / "traces.jsonl"), out, fmt="json", top=5)
    assert len(json.loads(out.getvalue())["slowest"]) == 2  # as many as there are names

    text = io.StringIO()
    render(FileSource(tmp_path / "traces.jsonl"), text, top=1)
    lines = text.getvalue().splitlines()
    assert "(1 malformed lines skipped)" in text.getvalue()
    bar = next(x for x in lines if x.strip().startswith("park.sync_mutex_lock"))
    assert "75.0 ms" in bar and " 75%" in bar and bar.count("█") == 30  # 75 % of 40
    wait = next(x for x in lines if "goblock: lock wait" in x)
    # 20 ms into a 100 ms span on a 40-column axis: 8 blanks, then 30 columns
    assert "|" + " " * 8 + "█" * 30 + " " * 2 + "|" in wait and "+20.0 ms, 75.0 ms" in wait


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    out = io.StringIO()
    assert render(FileSource(tmp_path / "nope.jsonl"), out) == 1
    assert "nope.jsonl: no such file" in out.getvalue()
