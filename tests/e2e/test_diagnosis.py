"""The product's promise, end to end (issue 6): the demo service observed by a real
otel-goblock pipeline (otlp + ebpf receivers → goblock → batch → Jaeger and a file); each
scenario's server span, read back from Jaeger, says where its wall time went — the
documented cause, the time in the matching category, categories that sum to the duration,
and an episode child span naming what it waited on."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import DemoService, JaegerClient, JaegerService, Span, Trace, hit, hit_many
from pipelines import Pipeline, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.ebpf]
MS = 100


def goblock_config(
    grpc_port: int, demo_pid: int, jaeger: JaegerService, out: Path
) -> dict[str, Any]:
    return {
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{grpc_port}"}}},
            # fsyncs on this disk are often < 1 ms: look at them all
            "ebpf": {
                "targets": [{"pid": demo_pid}],
                "syscall_threshold": "100us",
                "metrics_interval": "1s",
            },
        },
        # ... and make each an episode span (4 KiB fsyncs on an idle disk take 0.3-0.9 ms)
        "processors": {
            "goblock": {"join_delay": "1s", "min_episode": "100us"},
            "batch": {"timeout": "100ms"},
        },
        "exporters": {
            "otlp_grpc": {
                "endpoint": f"127.0.0.1:{jaeger.otlp_grpc_port}",
                "tls": {"insecure": True},
            },
            "file": {"path": str(out)},
            "file/metrics": {"path": str(out.with_name("metrics.jsonl"))},
        },
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp", "ebpf"],
                    "processors": ["goblock", "batch"],
                    "exporters": ["otlp_grpc", "file"],
                },
                "metrics": {"receivers": ["ebpf"], "exporters": ["file/metrics"]},
            }
        },
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("goblock")


@pytest.fixture(scope="module")
def observed(
    jaeger: JaegerService,
    start_demo: Callable[..., DemoService],
    workdir: Path,
) -> Iterator[DemoService]:
    """The demo exporting to a goblock pipeline that observes it with eBPF."""
    port = free_port()
    demo = start_demo(otlp_endpoint=f"http://127.0.0.1:{port}", service_name="demo-observed")
    pid = demo.pid
    assert pid
    pipe = Pipeline(
        goblock_config(port, pid, jaeger, workdir / "out.jsonl"), workdir, name="goblock"
    ).start(timeout=60)
    try:
        deadline = time.monotonic() + 60
        while f"pid {pid}: Go runtime probes attached" not in pipe.log():
            assert time.monotonic() < deadline, pipe.log()[-3000:]
            time.sleep(0.2)
        yield demo
    finally:
        pipe.stop()


def server_span(client: JaegerClient, trace_id: str, name: str) -> tuple[Trace, Span]:
    deadline = time.monotonic() + 30
    while True:
        trace = client.wait_trace(trace_id)
        spans = [s for s in trace.named(name, "server") if "goblock.cause" in s.attrs]
        if spans:
            return trace, spans[0]
        assert time.monotonic() < deadline, f"{name}: not enriched: {trace}"
        time.sleep(0.5)


CATEGORY = re.compile(
    r"^goblock\.(on_cpu|runqueue|syscall|gc\.stw|gc\.assist|unattributed"
    r"|park\.[a-z0-9_]+|grpc\.flow_control)\.ms$"
)


def categories(span: Span) -> dict[str, float]:
    return {k: float(v) for k, v in span.attrs.items() if CATEGORY.match(k)}


def episodes(trace: Trace, span: Span) -> list[Span]:
    return [s for s in trace.children(span) if s.name.startswith("goblock: ")]


@pytest.mark.parametrize(
    ("path", "name", "cause", "category"),
    [
        ("/sleep", "GET /sleep", "sleep", "goblock.park.sleep.ms"),
        ("/mutex", "GET /mutex", "lock", "goblock.park.sync_mutex_lock.ms"),
        ("/chan", "GET /chan", "channel", "goblock.park.chan_receive.ms"),
        ("/select", "GET /select", "channel", "goblock.park.select.ms"),
        ("/net", "GET /net", "network", "goblock.park.io_wait.ms"),
        ("/syscall", "GET /syscall", "syscall", "goblock.syscall.ms"),
        ("/fanout", "GET /fanout", "network", "goblock.park.io_wait.ms"),
    ],
)
def test_scenario_span_says_where_its_time_went(
    observed: DemoService,
    jaeger_client: JaegerClient,
    path: str,
    name: str,
    cause: str,
    category: str,
) -> None:
    r = hit(observed.url, f"{path}?ms={MS}")
    trace, span = server_span(jaeger_client, r.trace_id, name)
    cats = categories(span)
    assert span.attrs["goblock.cause"] == cause == span.attrs["demo.expected_cause"], span.attrs
    assert cats.get(category, 0) >= 0.8 * MS, (category, cats)
    assert abs(sum(cats.values()) - span.duration_ms) <= 1.0, (sum(cats.values()), span)
    assert span.attrs.get("goblock.diagnosis")
    eps = [e for e in episodes(trace, span) if e.attrs.get("goblock.cause") == cause]
    assert eps, [e.attrs for e in episodes(trace, span)]
    details = [e.attrs for e in eps]
    if path == "/net":
        assert any(d.get("goblock.peer.address") == r.body["backend"] for d in details), details
    if path == "/mutex":
        assert any(d.get("goblock.wait.reason") == "sync.Mutex.Lock" for d in details), details
    if path == "/syscall":
        assert any(str(d.get("goblock.fd.target", "")).startswith("pipe:[") for d in details)


def test_fsync_is_disk_with_the_file_named(
    observed: DemoService, jaeger_client: JaegerClient
) -> None:
    r = hit(observed.url, f"/fsync?ms={MS}")
    trace, span = server_span(jaeger_client, r.trace_id, "GET /fsync")
    assert span.attrs["goblock.cause"] == "disk", span.attrs
    assert categories(span)["goblock.syscall.ms"] >= 0.8 * r.body["fsync_ms"]
    eps = [e for e in episodes(trace, span) if e.attrs.get("goblock.syscall.name") == "fsync"]
    assert eps and str(eps[0].attrs.get("goblock.file.path", "")).endswith(r.body["file"])


GC_CAUSES, GC_REQUESTS = ("gc_assist", "gc_stw"), 5


def test_gc_is_assist_or_stop_the_world(observed: DemoService, jaeger_client: JaegerClient) -> None:
    """/gc is a CPU hog under GOGC=10: on a loaded 2-core host the GC's own workers hold
    the Ps, so one span in several reads run queue or on-CPU rather than assist. Every
    span must show real GC time and a GC episode; most must name GC as the cause."""
    causes = []
    for _ in range(GC_REQUESTS):
        r = hit(observed.url, "/gc?ms=300")
        trace, span = server_span(jaeger_client, r.trace_id, "GET /gc")
        cats = categories(span)
        gc_ms = cats.get("goblock.gc.assist.ms", 0) + cats.get("goblock.gc.stw.ms", 0)
        assert gc_ms >= 0.1 * span.duration_ms, span.attrs
        assert any(e.attrs.get("goblock.cause") in GC_CAUSES for e in episodes(trace, span))
        causes.append(span.attrs["goblock.cause"])
    assert sum(c in GC_CAUSES for c in causes) > GC_REQUESTS // 2, causes


def test_controls_get_no_false_cause(observed: DemoService, jaeger_client: JaegerClient) -> None:
    blocking = {
        "sleep",
        "lock",
        "channel",
        "network",
        "disk",
        "syscall",
        "gc_stw",
        "gc_assist",
        "grpc_flow_control",
        "grpc_keepalive",
    }
    r = hit(observed.url, "/sleep?ms=0")
    _, span = server_span(jaeger_client, r.trace_id, "GET /sleep")
    assert span.attrs["goblock.cause"] not in blocking - {"sleep"} or span.duration_ms < 1
    r = hit(observed.url, "/grpc/unary")
    _, span = server_span(jaeger_client, r.trace_id, "GET /grpc/unary")
    assert span.attrs["goblock.cause"] not in ("grpc_flow_control", "grpc_keepalive")


def test_concurrent_mixed_requests_each_get_their_own_cause(
    observed: DemoService, jaeger_client: JaegerClient
) -> None:
    paths = [
        p
        for _ in range(10)
        for p in (
            f"/sleep?ms={MS}",
            f"/mutex?ms={MS}",
            f"/chan?ms={MS}",
            f"/net?ms={MS}",
            f"/select?ms={MS}",
        )
    ]
    results = hit_many(observed.url, paths, parallel=50)
    wrong = []
    for r in results:
        name = "GET " + r.path.split("?")[0]
        _, span = server_span(jaeger_client, r.trace_id, name)
        if span.attrs["goblock.cause"] != span.attrs["demo.expected_cause"]:
            wrong.append((r.path, span.attrs["goblock.cause"], span.attrs["goblock.diagnosis"]))
    assert not wrong, wrong


def test_unobserved_process_spans_pass_through_untouched(
    observed: DemoService,
    jaeger: JaegerService,
    jaeger_client: JaegerClient,
    start_demo: Callable[..., DemoService],
) -> None:
    # a second demo exports through the same pipeline but is not a target
    port = re.search(r"127\.0\.0\.1:(\d+)", observed.otlp_endpoint)
    assert port
    other = start_demo(otlp_endpoint=observed.otlp_endpoint, service_name="demo-unobserved")
    try:
        r = hit(other.url, f"/sleep?ms={MS}")
        trace = jaeger_client.wait_trace(r.trace_id)
        span = trace.one("GET /sleep", "server")
        assert not [k for k in span.attrs if k.startswith("goblock.")]
        assert not [s for s in trace.spans if s.name.startswith("goblock: ")]
    finally:
        other.stop()


def client_span(client: JaegerClient, trace_id: str, name: str) -> tuple[Trace, Span]:
    deadline = time.monotonic() + 30
    while True:
        trace = client.wait_trace(trace_id)
        spans = [s for s in trace.named(name, "client") if "goblock.cause" in s.attrs]
        if spans:
            return trace, spans[0]
        assert time.monotonic() < deadline, f"{name}: not enriched: {trace}"
        time.sleep(0.5)


def test_grpc_flow_control_stall_is_named_on_the_sender_span(
    observed: DemoService, jaeger_client: JaegerClient
) -> None:
    waits = []
    for ms in (10, 60):  # the wait grows with the reader's delay
        r = hit(observed.url, f"/grpc/flow?ms={ms}&kib=512")
        _, span = client_span(jaeger_client, r.trace_id, "goblock.demo.Demo/Upload")
        a = span.attrs
        assert a["goblock.cause"] == "grpc_flow_control", a
        assert float(a.get("goblock.grpc.flow_control.ms", 0)) >= 0.5 * r.body["send_ms"], a
        wait = float(a["goblock.grpc.flow_control.wait.ms"])
        assert 0.5 * r.body["send_ms"] <= wait <= span.duration_ms + 1, a
        assert int(a["goblock.grpc.window_updates"]) >= 1, a
        assert a["goblock.diagnosis"].startswith("stream send stalled "), a
        assert "waiting for the HTTP/2 flow-control window" in a["goblock.diagnosis"], a
        assert "stream window 64 KiB" in a["goblock.diagnosis"], a
        # the TCP context of the RPC's connection, found through its transport goroutines
        assert a["goblock.tcp.connection"].startswith("tcp 127.0.0.1:"), a
        assert int(a["goblock.tcp.srtt_us"]) > 0 and "goblock.tcp.snd_wnd" in a, a
        waits.append(wait)
    assert waits[1] > 2 * waits[0], waits


def test_grpc_keepalive_goaway_is_named_on_the_failed_rpc(
    observed: DemoService, jaeger_client: JaegerClient
) -> None:
    r = hit(observed.url, "/grpc/keepalive?ms=100")
    _, span = client_span(jaeger_client, r.trace_id, "goblock.demo.Demo/Hang")
    a = span.attrs
    assert a["goblock.cause"] == "grpc_keepalive", a
    assert int(a["goblock.grpc.goaway.code"]) == 11, a
    assert a["goblock.grpc.goaway.debug_data"] == "too_many_pings", a
    assert int(a["goblock.grpc.pings.sent"]) >= 2, a
    diagnosis = a["goblock.diagnosis"]
    assert "server sent GOAWAY ENHANCE_YOUR_CALM too_many_pings" in diagnosis, diagnosis
    assert "client keepalive time 100 ms" in diagnosis, diagnosis
    assert "below the server's enforcement MinTime 5m" in diagnosis, diagnosis
    goaways = [f for name, f in span.events if name == "http2.goaway"]
    assert goaways and int(goaways[0]["http2.goaway.error_code"]) == 11, span.events
    # the HTTP handler around the failed RPC says the same
    _, server = server_span(jaeger_client, r.trace_id, "GET /grpc/keepalive")
    assert server.attrs["goblock.cause"] == "grpc_keepalive", server.attrs


def metric_points(path: Path, name: str) -> list[dict[str, Any]]:
    """Data points (attributes flattened) of one metric in the file exporter's OTLP JSON."""
    points = []
    for line in path.read_text().splitlines() if path.exists() else []:
        for rm in json.loads(line).get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    if m.get("name") != name:
                        continue
                    data = m.get("sum") or m.get("histogram") or {}
                    for p in data.get("dataPoints", []):
                        attrs = {
                            kv["key"]: next(iter(kv["value"].values()), None)
                            for kv in p.get("attributes", [])
                        }
                        points.append({**p, "attrs": attrs})
    return points


def test_grpc_metrics_count_goaways_by_code_and_flow_waits(
    observed: DemoService, workdir: Path
) -> None:
    hit(observed.url, "/grpc/keepalive?ms=100")
    hit(observed.url, "/grpc/flow?ms=20&kib=256")
    path = workdir / "metrics.jsonl"
    deadline = time.monotonic() + 20  # metrics_interval is 1 s
    while True:
        goaways = [
            p
            for p in metric_points(path, "goblock.grpc.goaways")
            if p["attrs"].get("code") == "ENHANCE_YOUR_CALM"
        ]
        waits = metric_points(path, "goblock.grpc.flow_control.wait")
        pings = metric_points(path, "goblock.grpc.pings")
        if goaways and waits and pings:
            break
        assert time.monotonic() < deadline, (goaways, waits, pings)
        time.sleep(0.5)
    assert {p["attrs"]["direction"] for p in goaways} == {"sent", "received"}, goaways
    assert sum(int(p["count"]) for p in waits) >= 1, waits
    assert all(p["attrs"].get("conn") for p in pings), pings


def _report(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "otel_goblock.cli", "report", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_report_draws_the_slowest_spans_from_jaeger_and_from_the_file(
    observed: DemoService, jaeger: JaegerService, jaeger_client: JaegerClient, workdir: Path
) -> None:
    """`otel-goblock report` on both sources finds a slow /mutex span among the slowest,
    with its cause, its split, its episode span on the waterfall and (Jaeger) its link."""
    # slower than any /mutex of the other tests (the waterfall draws one span per name)
    wait = 10 * MS
    r = hit(observed.url, f"/mutex?ms={wait}")
    _, span = server_span(jaeger_client, r.trace_id, "GET /mutex")
    url = jaeger.query_url
    for args in (
        ("--jaeger", url, "--service", "demo-observed"),
        (str(workdir / "out.jsonl"),),
    ):
        deadline = time.monotonic() + 30
        while True:  # the file exporter writes at its own pace
            p = _report(*args, "--format", "json", "--top", "100")
            assert p.returncode == 0, p.stderr
            doc = json.loads(p.stdout)
            mine = [s for s in doc["slowest"] if s["trace_id"] == r.trace_id]
            if mine or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert mine, (args, [s["trace_id"] for s in doc["slowest"]])
        s = mine[0]
        durations = [x["duration_ms"] for x in doc["slowest"]]
        assert durations == sorted(durations, reverse=True)
        assert s["cause"] == "lock" and s["diagnosis"] == span.attrs["goblock.diagnosis"]
        assert s["categories_ms"]["park.sync_mutex_lock"] >= 0.8 * wait, s["categories_ms"]
        assert abs(s["duration_ms"] - span.duration_ms) < 0.01, (s["duration_ms"], span)
        eps = [c for c in s["spans"] if c["attributes"].get("goblock.cause") == "lock"]
        assert eps and all(c["depth"] == 1 for c in eps), s["spans"]
        assert all(
            c["offset_ms"] >= 0 and c["offset_ms"] + c["duration_ms"] <= s["duration_ms"] + 0.01
            for c in eps
        ), eps
        row = next(n for n in doc["names"] if n["name"] == "GET /mutex")
        assert row["causes"]["lock"] >= 1 and row["p99_ms"] >= 0.9 * wait, row
        if args[0] == "--jaeger":
            assert s["link"] == f"{url}/trace/{r.trace_id}"
    text = _report("--jaeger", url, "--service", "demo-observed", "--top", "100")
    assert text.returncode == 0, text.stderr
    block = text.stdout[text.stdout.index(f"trace {r.trace_id}") :].split("\n\n")[0]
    assert f"{url}/trace/{r.trace_id}" in block
    assert re.search(r"park\.sync_mutex_lock\s+[\d.]+ ms\s+\d+%\s+█+", block), block
    assert re.search(r"goblock: .*\|\s*█+\s*\| \+[\d.]+ ms, [\d.]+ ms", block), block


def test_report_says_when_jaeger_is_not_there() -> None:
    port = free_port()
    p = _report("--jaeger", f"http://127.0.0.1:{port}")
    assert p.returncode == 1
    assert f"127.0.0.1:{port}" in p.stderr and "is Jaeger running there?" in p.stderr
