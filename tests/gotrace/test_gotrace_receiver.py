"""The `gotrace` receiver: config files, directory and endpoint sources, end to end.

Real parts only: real traces from the Go fixtures, a real Go server with net/http/pprof,
the receiver created through its factory; the downstream is a collecting consumer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from conftest import ScenarioTrace
from gotrace_fixtures import build, goroot
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from otel_goblock.receivers.gotrace.config import Config
from otel_goblock.receivers.gotrace.factory import FACTORY
from otel_goblock.receivers.gotrace.parser.textformat import read_txtar, text_to_bytes

from otel_goblock.component import ComponentID, Consumers, CreateSettings
from otel_goblock.config import ConfigError, decode
from otel_goblock.pdata import Event, Traces

TESTDATA = Path(__file__).resolve().parents[2] / "receivers" / "gotrace" / "testdata"
MS = 1_000_000

BAD = {
    "bad_both_sources.yaml": "expected exactly one source, got both",
    "bad_no_source.yaml": "expected exactly one source, got neither",
    "bad_endpoint_not_url.yaml": "endpoint: expected an http(s) URL",
    "bad_window.yaml": "window: expected between 1s and 60s",
    "bad_unknown_key.yaml": "seconds",
}


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("*.yaml")), ids=lambda p: p.stem)
def test_config_testdata(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    if path.name.startswith("bad_"):
        with pytest.raises(ConfigError, match=re.escape(BAD[path.name])):
            decode(Config, data)
    else:
        assert decode(Config, data).validate() == []


def test_config_defaults() -> None:
    cfg = decode(Config, {"endpoint": "http://localhost:6060/debug/pprof/trace"})
    assert cfg.window == pytest.approx(5.0)
    assert cfg.min_park == pytest.approx(0.0001)
    assert cfg.pid is None and cfg.directory is None


class Collect:
    """Downstream consumer that keeps what it gets."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def consume_traces(self, traces: Traces) -> None:
        assert traces.span_count == 0
        self.events.extend(traces.events)


def _make(config: dict, sink: Collect):
    reader = InMemoryMetricReader()
    settings = CreateSettings(
        id=ComponentID("gotrace"),
        kind="receiver",
        logger=logging.getLogger("gotrace"),
        meter=MeterProvider(metric_readers=[reader]).get_meter("gotrace"),
        signals=frozenset({"traces"}),
    )
    cfg = decode(Config, config)
    return FACTORY.create(settings, cfg, Consumers(traces=sink)), reader


def _counter(reader: InMemoryMetricReader, name: str) -> dict:
    out = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == name:
                    for p in m.data.data_points:
                        out[tuple(sorted(p.attributes.items()))] = p.value
    return out


async def _until(pred, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_directory_source_emits_park_gc_and_lineage_events(
    scenario_trace: ScenarioTrace, tmp_path: Path
) -> None:
    sink = Collect()
    recv, metrics = _make(
        {
            "directory": str(tmp_path),
            "poll_interval": "50ms",
            "pid": 4242,
            "delete_after_read": True,
        },
        sink,
    )
    await recv.start(None)
    try:
        shutil.copy(scenario_trace.path, tmp_path / "a.trace")
        await _until(lambda: recv.traces_read == 1)
    finally:
        await recv.shutdown()
    assert not (tmp_path / "a.trace").exists()  # delete_after_read
    events = sink.events
    assert {e.source for e in events} == {"gotrace"}
    assert {e.pid for e in events} == {4242}
    kinds = {e.kind for e in events}
    assert {"park", "gc_stw", "lineage", "gc"} <= kinds
    parks = [e for e in events if e.kind == "park"]
    assert all(e.end_ns - e.start_ns >= 100_000 for e in parks)  # min_park default
    by_reason = {e.attrs["reason"] for e in parks if e.end_ns - e.start_ns >= 15 * MS}
    assert {"sleep", "chan receive", "sync"} <= by_reason
    assert all(
        scenario_trace.wall_before_ns <= e.start_ns <= scenario_trace.wall_after_ns for e in events
    )
    stw = [e for e in events if e.kind == "gc_stw"]
    assert {"GC sweep termination", "GC mark termination"} <= {e.attrs["reason"] for e in stw}
    assert all(e.goid == 0 for e in stw)
    lineage = [e for e in events if e.kind == "lineage"]
    assert all(e.attrs["parent_goid"] == e.goid and e.attrs["child_goid"] for e in lineage)
    ok = _counter(metrics, "goblock_gotrace_traces")
    assert sum(v for k, v in ok.items() if ("outcome", "ok") in k) == 1
    assert sum(_counter(metrics, "goblock_events_received").values()) == len(events)


async def test_directory_source_counts_a_damaged_file_and_keeps_going(
    scenario_trace: ScenarioTrace, tmp_path: Path
) -> None:
    sink = Collect()
    recv, metrics = _make({"directory": str(tmp_path), "poll_interval": "50ms"}, sink)
    await recv.start(None)
    try:
        data = scenario_trace.path.read_bytes()
        (tmp_path / "broken.trace").write_bytes(data[: len(data) // 2])
        await _until(
            lambda: any(
                ("outcome", "parse_error") in k for k in _counter(metrics, "goblock_gotrace_traces")
            )
        )
        shutil.copy(scenario_trace.path, tmp_path / "good.trace")
        await _until(lambda: recv.traces_read == 1)
    finally:
        await recv.shutdown()
    assert any(e.kind == "park" and e.attrs["reason"] == "sleep" for e in sink.events)


@pytest.fixture
def pprof_server():
    binary = build("pprofserver", "local")
    proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith("PORT "), line
        yield proc.pid, int(line.split()[1])
    finally:
        proc.kill()
        proc.wait()


async def test_endpoint_source_pulls_windows_and_resolves_the_pid(pprof_server) -> None:
    pid, port = pprof_server
    sink = Collect()
    before = time.time_ns()
    recv, _ = _make(
        {"endpoint": f"http://127.0.0.1:{port}/debug/pprof/trace", "window": "1s"}, sink
    )
    await recv.start(None)
    try:
        await _until(lambda: recv.traces_read >= 2, timeout=60)
    finally:
        await recv.shutdown()
    after = time.time_ns()
    assert {e.pid for e in sink.events} == {pid}  # found from the listening port
    sleeps = [e for e in sink.events if e.kind == "park" and e.attrs["reason"] == "sleep"]
    assert len(sleeps) >= 20  # ~30 per 1s window, two windows
    assert all(
        29 * MS <= e.end_ns - e.start_ns <= 300 * MS for e in sleeps if not e.attrs.get("clipped")
    )
    assert all(before <= e.start_ns <= after for e in sink.events)
    assert any(e.kind == "lineage" for e in sink.events)


async def test_directory_source_anchors_old_traces_on_file_mtime(tmp_path: Path) -> None:
    # A Go 1.22 trace has no wall clock of its own: its last event lands on the mtime.

    test = goroot("local") / "src/internal/trace/testdata/tests/go122-gc-stress.test"
    data = text_to_bytes(read_txtar(test.read_text())["trace"])
    path = tmp_path / "old.trace"
    path.write_bytes(data)
    mtime_ns = 1_700_000_000_000_000_000
    os.utime(path, ns=(mtime_ns, mtime_ns))
    sink = Collect()
    recv, _ = _make({"directory": str(tmp_path), "poll_interval": "50ms", "min_park": "0s"}, sink)
    await recv.start(None)
    try:
        await _until(lambda: recv.traces_read == 1)
    finally:
        await recv.shutdown()
    assert sink.events
    assert max(e.end_ns for e in sink.events) == mtime_ns
    assert min(e.start_ns for e in sink.events) > mtime_ns - 10 * 1_000_000_000


class Stuck:
    """A downstream that never finishes consuming (a wedged pipeline)."""

    def __init__(self) -> None:
        self.calls = 0

    async def consume_traces(self, traces: Traces) -> None:
        self.calls += 1
        await asyncio.Event().wait()


async def test_shutdown_is_prompt_while_delivery_is_stuck(
    scenario_trace: ScenarioTrace, tmp_path: Path
) -> None:
    sink = Stuck()
    recv, _ = _make({"directory": str(tmp_path), "poll_interval": "50ms"}, sink)
    await recv.start(None)
    shutil.copy(scenario_trace.path, tmp_path / "a.trace")
    await _until(lambda: sink.calls == 1)
    t0 = time.monotonic()
    await asyncio.wait_for(recv.shutdown(), 5)
    assert time.monotonic() - t0 < 5
    # the parsing worker thread notices the shutdown and ends
    await _until(lambda: recv.active_parses == 0, timeout=5)


async def test_endpoint_errors_are_counted_and_retried(multigen_trace: bytes) -> None:
    """A server that refuses (Go answers 500 while another trace is running), then serves."""
    from aiohttp import web

    calls = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.query.get("seconds"))
        if len(calls) == 1:
            return web.Response(status=500, text="Could not enable tracing: already enabled")
        return web.Response(body=multigen_trace)

    app = web.Application()
    app.router.add_get("/debug/pprof/trace", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    sink = Collect()
    recv, metrics = _make(
        {"endpoint": f"http://127.0.0.1:{port}/debug/pprof/trace", "window": "1s", "pid": 7},
        sink,
    )
    try:
        await recv.start(None)
        await _until(lambda: recv.traces_read >= 1)
    finally:
        await recv.shutdown()
        await runner.cleanup()
    assert calls[:2] == ["1", "1"]
    outcomes = _counter(metrics, "goblock_gotrace_traces")
    assert sum(v for k, v in outcomes.items() if ("outcome", "fetch_error") in k) >= 1
    assert any(e.kind == "park" and e.pid == 7 for e in sink.events)
