"""Every scenario of the demo service, exporting straight to Jaeger (no otel-goblock): the
trace read back from Jaeger has the expected spans (name, kind, parent/child, duration of
at least the requested time). This proves the ground truth before any diagnosis exists.

All scenarios are requested once, concurrently (they mostly wait), by a module fixture;
each test then checks one scenario's answer and trace.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import psutil
import pytest
from harness import (
    DemoService,
    JaegerClient,
    ScenarioResult,
    Span,
    Trace,
    expected_span_count,
    hit,
    hit_many,
)
from harness.services import ROOT

pytestmark = pytest.mark.e2e

MS = 100  # requested blocking time: long enough to dominate, short enough to keep tests fast


@dataclass(frozen=True)
class Single:
    """A scenario whose trace is one otelhttp server span (the request's own goroutine)."""

    path: str
    route: str
    cause: str
    min_ms: float


SINGLE = [
    Single(f"/sleep?ms={MS}", "/sleep", "sleep", MS),
    Single(f"/mutex?ms={MS}", "/mutex", "lock", MS),
    Single(f"/chan?ms={MS}", "/chan", "channel", MS),
    Single(f"/select?ms={MS}", "/select", "channel", MS),
    Single(f"/net?ms={MS}", "/net", "network", MS),
    Single(f"/fsync?ms={MS}", "/fsync", "disk", MS),
    Single(f"/syscall?ms={MS}", "/syscall", "syscall", MS),
    Single("/cpu?ms=50", "/cpu", "runqueue", 50),
    Single(f"/gc?ms={MS}", "/gc", "gc_assist", MS),
    Single(f"/fanout?ms={MS}&n=4", "/fanout", "network", MS),
]
DOWNSTREAM = f"/downstream?ms={MS}"
GRPC_UNARY = "/grpc/unary"
GRPC_FLOW = "/grpc/flow?ms=20&kib=256"
GRPC_KEEPALIVE = "/grpc/keepalive?ms=100"
# /grpc/flow stall: the same 256 KiB against a fast and a slow reader, and 48 KiB (fits in
# the 64 KiB window) against the slow reader, where the sender must not wait at all.
FLOW_FAST, FLOW_SLOW, FLOW_FITS = 10, 60, "/grpc/flow?ms=60&kib=48"
FLOW_STALL = [f"/grpc/flow?ms={FLOW_FAST}&kib=256", f"/grpc/flow?ms={FLOW_SLOW}&kib=256", FLOW_FITS]

ALL_PATHS = [c.path for c in SINGLE] + [DOWNSTREAM, GRPC_UNARY, GRPC_FLOW, GRPC_KEEPALIVE]


# CPU hogs: the spinners of /cpu and the GOGC=10 allocation of /gc would slow every other
# scenario running beside them (a 100 ms sleep would take 600 ms, mostly waiting for a CPU),
# so they run one at a time after the waiting scenarios, which run side by side.
HOGS = {"/cpu", "/gc"}


@pytest.fixture(scope="module")
def results(demo: DemoService) -> dict[str, ScenarioResult]:
    waiting = [p for p in ALL_PATHS if p.split("?")[0] not in HOGS]
    out = dict(zip(waiting, hit_many(demo.url, waiting, parallel=len(waiting)), strict=True))
    for p in ALL_PATHS:
        if p not in out:
            out[p] = hit(demo.url, p)
    return out


def answered(results: dict[str, ScenarioResult], path: str) -> ScenarioResult:
    r = results[path]
    assert r.status == 200, f"{path}: HTTP {r.status}: {r.body}"
    return r


def server_span(trace: Trace, route: str, demo: DemoService) -> Span:
    """The request's otelhttp server span: a root, from the demo's process, labelled with
    the route and its ground-truth cause."""
    span = trace.one(f"GET {route}", "server")
    assert span in trace.roots
    assert span.service == demo.service_name
    assert span.resource.get("process.pid") == demo.pid
    assert span.attrs.get("http.route") == route
    return span


@pytest.mark.parametrize("case", SINGLE, ids=[c.route for c in SINGLE])
def test_single_span_scenario(
    case: Single,
    results: dict[str, ScenarioResult],
    demo: DemoService,
    jaeger_client: JaegerClient,
) -> None:
    r = answered(results, case.path)
    assert r.body["expected_cause"] == case.cause
    assert r.body["elapsed_ms"] >= case.min_ms
    trace = jaeger_client.wait_trace(r.trace_id)
    assert len(trace.spans) == expected_span_count(case.path) == 1, [s.name for s in trace.spans]
    span = server_span(trace, case.route, demo)
    assert span.attrs["demo.expected_cause"] == case.cause
    assert span.duration_ms >= case.min_ms
    assert not span.is_error


def test_scenario_reports_what_happened(results: dict[str, ScenarioResult]) -> None:
    """The JSON answers show each cause really happened the way the docs describe."""
    body = {c.route: answered(results, c.path).body for c in SINGLE}
    assert body["/mutex"]["lock_wait_ms"] >= 0.9 * MS
    assert body["/select"]["case"] == "answer"
    assert body["/net"]["reply"] == f"ok {MS}"
    assert body["/syscall"]["read"] == 1
    assert body["/fsync"]["fsyncs"] >= 1
    # fsync dominates /fsync: its files are on a real disk (tmpfs would make fsync free)
    assert body["/fsync"]["fsync_ms"] >= 0.5 * body["/fsync"]["elapsed_ms"]
    assert body["/fanout"]["n"] == 4
    # /cpu: the handler got its 50 ms of CPU, and waited runnable on top of that
    assert body["/cpu"]["cpu_ms"] >= 50
    assert body["/cpu"]["elapsed_ms"] > 1.2 * body["/cpu"]["cpu_ms"]
    # /gc: GC cycles ran during the request and some of the time went to mark assists
    assert body["/gc"]["gc_cycles"] >= 1
    assert body["/gc"]["assist_cpu_ms"] > 0


def test_downstream_client_and_server_spans(
    results: dict[str, ScenarioResult], demo: DemoService, jaeger_client: JaegerClient
) -> None:
    r = answered(results, DOWNSTREAM)
    assert r.body["status"] == 200
    trace = jaeger_client.wait_trace(r.trace_id, expected_span_count(DOWNSTREAM))
    assert len(trace.spans) == 3
    root = server_span(trace, "/downstream", demo)
    client = trace.one("HTTP GET", "client")
    inner = trace.one("GET /sleep", "server")
    assert client.parent_span_id == root.span_id
    assert inner.parent_span_id == client.span_id
    assert root.attrs["demo.expected_cause"] == "network"
    assert inner.attrs["demo.expected_cause"] == "sleep"
    for s in (root, client, inner):
        assert s.duration_ms >= MS, s
    assert root.duration_us >= client.duration_us >= inner.duration_us


def grpc_spans(trace: Trace, route: str, method: str, demo: DemoService) -> tuple[Span, Span, Span]:
    """HTTP server span -> otelgrpc client span -> otelgrpc server span, one trace."""
    root = server_span(trace, route, demo)
    client = trace.one(method, "client")
    server = trace.one(method, "server")
    assert client.parent_span_id == root.span_id
    assert server.parent_span_id == client.span_id
    assert client.attrs.get("rpc.system.name", client.attrs.get("rpc.system")) == "grpc"
    return root, client, server


def test_grpc_unary_control(
    results: dict[str, ScenarioResult], demo: DemoService, jaeger_client: JaegerClient
) -> None:
    r = answered(results, GRPC_UNARY)
    assert r.body["reply"] == "ping"
    trace = jaeger_client.wait_trace(r.trace_id, 3)
    root, client, server = grpc_spans(trace, "/grpc/unary", "goblock.demo.Demo/Unary", demo)
    assert root.attrs["demo.expected_cause"] == "none"
    assert not client.is_error and not server.is_error


def test_grpc_flow_spans(
    results: dict[str, ScenarioResult], demo: DemoService, jaeger_client: JaegerClient
) -> None:
    r = answered(results, GRPC_FLOW)
    assert r.body["bytes"] == 256 * 1024 and r.body["messages"] == 16
    trace = jaeger_client.wait_trace(r.trace_id, 3)
    root, client, server = grpc_spans(trace, "/grpc/flow", "goblock.demo.Demo/Upload", demo)
    assert root.attrs["demo.expected_cause"] == "grpc_flow_control"
    # the sender's span covers its stalled sends; the reader slept before every read but one
    assert client.duration_ms >= r.body["send_ms"]
    assert server.duration_ms >= (r.body["messages"] - 1) * 20
    assert not client.is_error and not server.is_error


def test_grpc_flow_really_stalls(demo: DemoService) -> None:
    """The sender's send time grows with the reader's delay once it has more to send than
    the 64 KiB window (plus grpc-go's 64 KiB write quota) holds, and stays near zero when it
    fits: the sender is waiting on flow control, not on anything else. Its own requests,
    side by side, away from the other scenarios' load."""
    fast, slow, fits = (r.body for r in hit_many(demo.url, FLOW_STALL))
    # 256 KiB - 64 KiB window - 64 KiB quota = 8 messages of 16 KiB the reader must take
    # first, with a delay before each read after the first: at least ~7 delays.
    assert slow["send_ms"] >= 5 * FLOW_SLOW, slow
    assert slow["send_ms"] > 2 * fast["send_ms"], (fast, slow)
    assert fits["send_ms"] < FLOW_SLOW, fits
    assert fits["total_ms"] >= (fits["messages"] - 1) * FLOW_SLOW


def test_grpc_keepalive_ends_in_goaway_too_many_pings(
    results: dict[str, ScenarioResult], demo: DemoService, jaeger_client: JaegerClient
) -> None:
    r = answered(results, GRPC_KEEPALIVE)
    err = r.body["grpc_error"]
    assert r.body["too_many_pings"] is True
    assert "code = Unavailable" in err
    assert "ENHANCE_YOUR_CALM" in err and "too_many_pings" in err
    trace = jaeger_client.wait_trace(r.trace_id, 3)
    root, client, _server = grpc_spans(trace, "/grpc/keepalive", "goblock.demo.Demo/Hang", demo)
    assert root.attrs["demo.expected_cause"] == "grpc_keepalive"
    assert client.is_error
    assert "too_many_pings" in client.attrs.get("otel.status_description", ""), client.attrs
    code = client.attrs.get("rpc.response.status_code", client.attrs.get("rpc.grpc.status_code"))
    assert code in ("UNAVAILABLE", 14), client.attrs


def test_docs_table_lists_every_scenario() -> None:
    """docs/scenarios.md is the reference the diagnosis tests cite: it must name every
    route exercised here."""
    doc = (ROOT / "docs" / "scenarios.md").read_text()
    documented = set(re.findall(r"^\| `(/[a-z/]+)", doc, flags=re.M))
    routes = {p.split("?")[0] for p in ALL_PATHS}
    assert routes == documented


def test_cpu_host_mode_waits_in_the_kernel_run_queue(demo: DemoService) -> None:
    """mode=host: spinner processes saturate the CPUs, so most of the handler's non-CPU
    time is its thread's kernel run-queue delay (schedstat); the spinners stop after."""
    r = hit(demo.url, "/cpu?ms=50&mode=host&spinners=4")
    assert r.status == 200, r.body
    b = r.body
    assert b["mode"] == "host" and b["cpu_ms"] >= 50
    assert b["os_runqueue_ms"] >= 0.5 * (b["elapsed_ms"] - b["cpu_ms"]) > 0, b
    # the spinners (an idle pool of child processes) are switched off again
    assert demo.pid is not None
    spinners = psutil.Process(demo.pid).children()
    assert len(spinners) >= 4
    before = sum(p.cpu_times().user for p in spinners)
    time.sleep(0.5)
    assert sum(p.cpu_times().user for p in spinners) - before < 0.05
