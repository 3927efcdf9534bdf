"""The shape the diagnosis tests will take: demo service -> an otel-goblock pipeline ->
Jaeger, with the pipeline also writing a file. Today the pipeline only relays (no goblock
processor yet); the tests prove the harness composes: the same trace, span for span, in
Jaeger and in the file exporter's output, and the demo's runtime metrics arriving over
OTLP when a pipeline that takes metrics is in between."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from harness import DemoService, JaegerClient, JaegerService, Trace, hit, read_traces
from pipelines import Pipeline, free_port

pytestmark = pytest.mark.e2e


def relay_to_jaeger(grpc_port: int, jaeger: JaegerService, out: Path) -> dict[str, object]:
    """otlp -> batch -> (Jaeger, file) for traces; otlp -> file for metrics."""
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
                },
                "metrics": {"receivers": ["otlp"], "exporters": ["file"]},
            }
        },
    }


@pytest.fixture(scope="module")
def relay(
    jaeger: JaegerService, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, Path]]:
    """A running relay pipeline: (its OTLP/gRPC port, the file it writes)."""
    workdir = tmp_path_factory.mktemp("relay")
    port, out = free_port(), workdir / "out.jsonl"
    with Pipeline(relay_to_jaeger(port, jaeger, out), workdir, name="relay"):
        yield port, out


@pytest.fixture(scope="module")
def demo_via_relay(
    relay: tuple[int, Path], start_demo: Callable[..., DemoService]
) -> Iterator[DemoService]:
    """The demo exporting traces and (every 300 ms) runtime metrics to the relay."""
    demo = start_demo(
        otlp_endpoint=f"http://127.0.0.1:{relay[0]}",
        service_name="demo-via-goblock",
        extra_env={"OTEL_METRICS_EXPORTER": "otlp", "OTEL_METRIC_EXPORT_INTERVAL": "300"},
    )
    yield demo
    demo.stop()  # before the relay stops, so the last spans and metrics get through


def eventually(f: Callable[[], object], what: str, timeout_s: float = 15) -> object:
    deadline = time.monotonic() + timeout_s
    while not (v := f()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return v


def shape(t: Trace) -> set[tuple[str, str | None, str, str]]:
    return {(s.span_id, s.parent_span_id, s.name, s.kind) for s in t.spans}


def test_demo_through_pipeline_reaches_jaeger_and_file(
    demo_via_relay: DemoService, relay: tuple[int, Path], jaeger_client: JaegerClient
) -> None:
    out = relay[1]
    r = hit(demo_via_relay.url, "/downstream?ms=50")
    assert r.status == 200, r.body
    in_jaeger = jaeger_client.wait_trace(r.trace_id, 3)

    def file_trace() -> Trace | None:
        t = read_traces(out).get(r.trace_id)
        return t if t is not None and len(t.spans) >= 3 else None

    in_file = eventually(file_trace, f"trace {r.trace_id} not in {out}")
    assert isinstance(in_file, Trace)
    assert shape(in_jaeger) == shape(in_file)
    for s in in_file.spans:
        assert s.service == "demo-via-goblock"
        assert s.resource["process.pid"] == demo_via_relay.pid
    root = in_file.one("GET /downstream", "server")
    assert root.attrs["demo.expected_cause"] == "network"
    assert root.duration_ms >= 50


def metric_names(out: Path) -> set[str]:
    names = set()
    for line in out.read_text().splitlines() if out.exists() else []:
        obj = json.loads(line)
        for rm in obj.get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                names.update(m["name"] for m in sm.get("metrics", []))
    return names


def test_demo_runtime_metrics_arrive_over_otlp(
    demo_via_relay: DemoService, relay: tuple[int, Path]
) -> None:
    """The contrib runtime instrumentation exports Go runtime metrics (go.* names of the
    current semantic conventions) through the same OTLP endpoint."""
    names = eventually(
        lambda: {n for n in metric_names(relay[1]) if n.startswith("go.")},
        "no go.* runtime metrics in the relay's output",
    )
    assert "go.goroutine.count" in names, names
