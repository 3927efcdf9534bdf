"""The shape the diagnosis tests will take: demo service -> an otel-goblock pipeline ->
Jaeger, with the pipeline also writing a file. Today the pipeline only relays (no goblock
processor yet); the test proves the harness composes: the same trace, span for span, in
Jaeger and in the file exporter's output."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import DemoService, JaegerClient, JaegerService, Trace, hit, read_traces
from pipelines import Pipeline, free_port

pytestmark = pytest.mark.e2e


def relay_to_jaeger(grpc_port: int, jaeger: JaegerService, out: Path) -> dict[str, object]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{grpc_port}"}}}},
        "processors": {"batch": {"timeout": "100ms"}},
        "exporters": {
            "otlp_grpc": {
                "endpoint": f"127.0.0.1:{jaeger.otlp_grpc_port}",
                "tls": {"insecure": True},
            },
            "file": {"path": str(out)},
        },
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["otlp_grpc", "file"],
                }
            }
        },
    }


def shape(t: Trace) -> set[tuple[str, str | None, str, str]]:
    return {(s.span_id, s.parent_span_id, s.name, s.kind) for s in t.spans}


def test_demo_through_pipeline_reaches_jaeger_and_file(
    start_demo: Callable[..., DemoService],
    jaeger: JaegerService,
    jaeger_client: JaegerClient,
    tmp_path: Path,
) -> None:
    port = free_port()
    out = tmp_path / "spans.jsonl"
    with Pipeline(relay_to_jaeger(port, jaeger, out), tmp_path, name="relay"):
        demo = start_demo(otlp_endpoint=f"http://127.0.0.1:{port}", service_name="demo-via-goblock")
        r = hit(demo.url, "/downstream?ms=50")
        assert r.status == 200, r.body
        in_jaeger = jaeger_client.wait_trace(r.trace_id, 3)
        deadline = time.monotonic() + 10
        while r.trace_id not in (in_file := read_traces(out)) or len(in_file[r.trace_id].spans) < 3:
            assert time.monotonic() < deadline, f"trace {r.trace_id} not in {out}"
            time.sleep(0.1)
        demo.stop()
    assert shape(in_jaeger) == shape(in_file[r.trace_id])
    for s in in_file[r.trace_id].spans:
        assert s.service == "demo-via-goblock"
        assert s.resource["process.pid"] == in_jaeger.spans[0].resource["process.pid"]
    root = in_file[r.trace_id].one("GET /downstream", "server")
    assert root.attrs["demo.expected_cause"] == "network"
    assert root.duration_ms >= 50
