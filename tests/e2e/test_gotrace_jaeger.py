"""End to end without eBPF and without root (issue 8), through a real Jaeger.

The demo service (goblocktrace span logs on: GOBLOCK_TRACE_SPANS=1; net/http/pprof on
its loopback port) exports OTLP to a real `otel-goblock run` that runs as user `nobody`
with no capabilities and only the `otlp` and `gotrace` receivers → `goblock` → the
`otlp_grpc` exporter → Jaeger. Each scenario's server span, read back from Jaeger's query
API, carries the cause the demo says it injected (`demo.expected_cause`), joined to the
goroutine that ran it through the span logs in the pulled execution traces.

`nobody` cannot read the demo's /proc/<pid>/fd (the demo runs as root here), so the
receiver cannot find the pid behind the endpoint's port by itself: the config names it,
as the receiver's README tells an unprivileged deployment to do.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from harness import DemoService, JaegerClient, JaegerService, Span, Trace, hit, hit_many
from pipelines import Pipeline, free_port

pytestmark = pytest.mark.e2e

MS = 150
WINDOW = "1s"  # short trace windows keep the test fast
JOIN_DELAY = "3s"  # above window + parse: a span waits for the window holding its end log
AS_NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups")
NOBODY_UID = 65534

# (request, route, the causes accepted). The waiting scenarios run side by side; /gc
# (GOGC=10 allocation, a CPU hog) runs alone after them. The demo expects gc_assist for
# /gc; the tracer (like the eBPF source, tests/e2e/test_diagnosis.py) may see the span's
# GC time mostly as stop-the-world instead: both are the garbage collector.
# The category holding the injected wait is named by Go's block reason as the tracer
# writes it ("sync", "network"; the uprobes read the runtime's waitReason instead).
WAITING = [
    (f"/sleep?ms={MS}", "/sleep", {"sleep"}, "goblock.park.sleep.ms"),
    (f"/mutex?ms={MS}", "/mutex", {"lock"}, "goblock.park.sync.ms"),
    (f"/chan?ms={MS}", "/chan", {"channel"}, "goblock.park.chan_receive.ms"),
    (f"/net?ms={MS}", "/net", {"network"}, "goblock.park.network.ms"),
]
GC = ("/gc?ms=300", "/gc", {"gc_assist", "gc_stw"}, None)
CATEGORY = re.compile(
    r"^goblock\.(on_cpu|runqueue|syscall|gc\.stw|gc\.assist|unattributed|park\.[a-z0-9_]+)\.ms$"
)


def gotrace_config(otlp_port: int, demo: DemoService, jaeger: JaegerService) -> dict[str, Any]:
    return {
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{otlp_port}"}}},
            "gotrace": {
                "endpoint": f"http://127.0.0.1:{demo.port}/debug/pprof/trace",
                "window": WINDOW,
                "pid": demo.pid,
            },
        },
        "processors": {"goblock": {"join_delay": JOIN_DELAY}},
        "exporters": {
            "otlp_grpc": {
                "endpoint": f"127.0.0.1:{jaeger.otlp_grpc_port}",
                "tls": {"insecure": True},
            }
        },
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp", "gotrace"],
                    "processors": ["goblock"],
                    "exporters": ["otlp_grpc"],
                }
            }
        },
    }


def wait_until(f: Callable[[], Any], what: str, timeout_s: float = 30) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (v := f()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return v


def traces_pulled(p: Pipeline) -> float:
    m = p.metrics()
    return sum(v for k, v in m.items() if k.startswith("goblock_gotrace_traces") and "ok" in k)


@pytest.fixture(scope="module")
def nobody_workdir() -> Iterator[Path]:
    """A work dir `nobody` can enter and read (pytest's tmp dirs are root's, mode 0700)."""
    d = Path(tempfile.mkdtemp(prefix="goblock-gotrace-e2e-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def unprivileged(
    jaeger: JaegerService, start_demo: Callable[..., DemoService], nobody_workdir: Path
) -> Iterator[tuple[DemoService, Pipeline]]:
    """The demo exporting to a pipeline that runs as nobody, pulling trace windows."""
    if os.geteuid() != 0:
        pytest.skip("switching to user nobody needs root (the pipeline itself runs without)")
    if shutil.which(AS_NOBODY[0]) is None:
        pytest.fail("setpriv (util-linux) is missing: cannot run the pipeline as nobody")
    otlp_port = free_port()
    demo = start_demo(
        otlp_endpoint=f"http://127.0.0.1:{otlp_port}",
        service_name="demo-gotrace-jaeger",
        extra_env={"GOBLOCK_TRACE_SPANS": "1"},
    )
    assert demo.pid
    config = gotrace_config(otlp_port, demo, jaeger)
    pipe = Pipeline(config, nobody_workdir, name="gotrace-nobody", command_prefix=AS_NOBODY)
    pipe.config_path.chmod(0o644)
    pipe.start(timeout=60)
    try:
        # one window pulled and parsed: from now on the receiver pulls back to back
        wait_until(lambda: traces_pulled(pipe) >= 1, f"no trace pulled:\n{pipe.log()[-3000:]}")
        yield demo, pipe
    finally:
        assert pipe.stop() == 0, pipe.log()[-3000:]


def enriched_server_span(client: JaegerClient, trace_id: str, name: str) -> tuple[Trace, Span]:
    """The trace and its server span once it arrives enriched (the pipeline holds spans
    for join_delay; episode spans travel with it)."""

    def get() -> tuple[Trace, Span] | None:
        t = client.trace(trace_id)
        found = [] if t is None else t.named(name, "server")
        span = next((s for s in found if "goblock.cause" in s.attrs), None)
        return None if t is None or span is None else (t, span)

    return wait_until(get, f"{name} ({trace_id}) not in Jaeger enriched", timeout_s=30)


def test_pipeline_runs_as_nobody_without_capabilities(
    unprivileged: tuple[DemoService, Pipeline],
) -> None:
    _, pipe = unprivileged
    assert pipe.proc is not None
    p = psutil.Process(pipe.proc.pid)
    assert p.uids().real == p.uids().effective == NOBODY_UID
    assert "otel_goblock.cli" in " ".join(p.cmdline())
    with open(f"/proc/{p.pid}/status") as f:
        caps = dict(line.split(":\t", 1) for line in f if line.startswith("Cap"))
    assert int(caps["CapEff"], 16) == 0 and int(caps["CapPrm"], 16) == 0, caps


def test_causes_read_back_from_jaeger(
    unprivileged: tuple[DemoService, Pipeline], jaeger_client: JaegerClient
) -> None:
    demo, pipe = unprivileged
    paths = [w[0] for w in WAITING]
    results = hit_many(demo.url, paths, parallel=len(paths))
    results.append(hit(demo.url, GC[0]))
    wrong = []
    for (path, route, causes, category), r in zip([*WAITING, GC], results, strict=True):
        assert r.status == 200, (path, r.body)
        trace, span = enriched_server_span(jaeger_client, r.trace_id, f"GET {route}")
        a = span.attrs
        assert span.service == demo.service_name
        assert span.resource.get("process.pid") == demo.pid
        # joined to the goroutine that ran it (the span logs), not process-wide
        assert a["goblock.join"] == "span_marker", (path, a)
        assert isinstance(a["goblock.goroutine.id"], int) and a["goblock.goroutine.id"] > 0
        assert a["demo.expected_cause"] == r.body["expected_cause"]
        assert a["demo.expected_cause"] in causes
        # the categories are disjoint and sum to the span's duration
        cats = {k: float(v) for k, v in a.items() if CATEGORY.match(k)}
        assert abs(sum(cats.values()) - span.duration_ms) <= max(1.0, 0.02 * span.duration_ms)
        if category is not None:
            assert cats.get(category, 0) >= 0.8 * MS, (path, cats)
            # the wait is an episode child span of the server span
            assert any(s.name.startswith("goblock: ") for s in trace.children(span)), (
                path,
                [s.name for s in trace.spans],
            )
        else:
            assert cats["goblock.gc.assist.ms"] + cats["goblock.gc.stw.ms"] > 0, cats
        if a["goblock.cause"] not in causes:
            wrong.append((path, a))
    assert not wrong, wrong
    m = pipe.metrics()
    assert m.get("goblock_events_received_total", m.get("goblock_events_received", 0)) > 0, m
