"""End to end without eBPF (issue 8): the demo service with goblocktrace's span logs
(GOBLOCK_TRACE_SPANS=1) → a real `otel-goblock run` with only the `otlp` and `gotrace`
receivers → `goblock` → `file`. The server span of /sleep, /mutex and /chan leaves the
pipeline with the scenario's cause and the goroutine that ran it, from the execution
trace alone (no root, no uprobes).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import DemoService, Span, build_demo, hit, read_traces
from pipelines import Pipeline, free_port, wait_until
from pipelines import gotrace_traces_pulled as traces_pulled

pytestmark = pytest.mark.e2e

WINDOW = "1s"  # short trace windows keep the test fast
JOIN_DELAY = "3s"  # a span waits for the window holding its end to be pulled and parsed


def gotrace_pipeline(otlp_port: int, demo_port: int, out: Path) -> dict[str, Any]:
    return {
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{otlp_port}"}}},
            "gotrace": {
                "endpoint": f"http://127.0.0.1:{demo_port}/debug/pprof/trace",
                "window": WINDOW,
            },
        },
        "processors": {"goblock": {"join_delay": JOIN_DELAY}},
        "exporters": {"file": {"path": str(out)}},
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp", "gotrace"],
                    "processors": ["goblock"],
                    "exporters": ["file"],
                }
            }
        },
    }


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DemoService, Path]]:
    """(the demo with span logs on, the file the pipeline writes), pulling steadily."""
    build_demo()
    workdir = tmp_path_factory.mktemp("gotrace-e2e")
    otlp_port = free_port()
    demo = DemoService(
        run_dir=workdir / "demo",
        otlp_endpoint=f"http://127.0.0.1:{otlp_port}",
        service_name="demo-gotrace",
        extra_env={"GOBLOCK_TRACE_SPANS": "1"},
    )
    demo.start()
    out = workdir / "out.jsonl"
    pipeline = Pipeline(gotrace_pipeline(otlp_port, demo.port, out), workdir, name="gotrace")
    try:
        pipeline.start()
        # one window pulled and parsed: the receiver now pulls back to back
        wait_until(lambda: traces_pulled(pipeline) >= 1, f"no trace pulled:\n{pipeline.log()}")
        yield demo, out
    finally:
        demo.stop()
        pipeline.stop()


def server_span(out: Path, trace_id: str) -> Span | None:
    t = read_traces(out).get(trace_id) if out.exists() else None
    if t is None:
        return None
    for s in t.spans:
        if s.kind == "server" and "goblock.cause" in s.attrs:
            return s
    return None


@pytest.mark.parametrize(
    ("path", "cause", "park_key"),
    [
        ("/sleep?ms=150", "sleep", "goblock.park.sleep.ms"),
        ("/mutex?ms=150", "lock", "goblock.park.sync.ms"),
        ("/chan?ms=150", "channel", "goblock.park.chan_receive.ms"),
    ],
)
def test_server_span_cause_from_gotrace_alone(
    stack: tuple[DemoService, Path], path: str, cause: str, park_key: str
) -> None:
    demo, out = stack
    r = hit(demo.url, path)
    assert r.status == 200, r.body
    span = wait_until(
        lambda: server_span(out, r.trace_id), f"{path}: enriched server span not in {out}"
    )
    a = span.attrs
    assert a["goblock.join"] == "span_marker", a
    assert isinstance(a["goblock.goroutine.id"], int) and a["goblock.goroutine.id"] > 0
    assert a["goblock.cause"] == cause, a
    # most of the injected 150 ms is the park (a window boundary may cut a few ms out)
    assert a[park_key] >= 0.8 * 150, a
    assert a["demo.expected_cause"] == cause


def test_concurrent_spans_get_their_own_goroutines(stack: tuple[DemoService, Path]) -> None:
    """Three scenarios at once: each span is joined to a different goroutine, with its
    own cause (no cross-talk between goroutines in one trace window)."""
    from harness import hit_many

    demo, out = stack
    paths = ["/sleep?ms=120", "/mutex?ms=120", "/chan?ms=120"]
    results = hit_many(demo.url, paths, parallel=3)
    spans = [
        wait_until(lambda r=r: server_span(out, r.trace_id), f"{r.path} not in {out}")
        for r in results
    ]
    goids = {s.attrs["goblock.goroutine.id"] for s in spans}
    assert len(goids) == 3
    for r, s in zip(results, spans, strict=True):
        assert s.attrs["goblock.cause"] == r.body["expected_cause"], (r.path, s.attrs)
