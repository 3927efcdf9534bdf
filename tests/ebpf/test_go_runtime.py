"""The receiver's Go runtime probes on the real demo service (issue 5).

Every demo response names its trace id; the span marker of that trace gives the handler's
goroutine; that goroutine's park must carry the scenario's wait reason and last the
injected time. The service runs under SCHED_RR so its timers fire on time on this shared
machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from ebpf_harness import REPO, Running

pytestmark = pytest.mark.ebpf
MS = 80


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_demo(binary: Path, data: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{_free_port()}",
        "OTEL_METRICS_EXPORTER": "none",
    }
    proc = subprocess.Popen(
        ["chrt", "-r", "10", str(binary), "-listen", f"127.0.0.1:{port}", "-data-dir", str(data)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).read()
            break
        except OSError:
            time.sleep(0.1)
    return proc, base


def _get(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url, timeout=30).read())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    subprocess.run(
        ["bash", str(REPO / "scripts" / "build_demo.sh")],
        check=True,
        capture_output=True,
        timeout=900,
    )
    binary = REPO / "build" / "demo-service"
    r = Running(
        {"targets": [{"exe": str(binary)}], "tcp": False, "sched": False}, name="goruntime"
    ).start()
    proc, base = _start_demo(binary, tmp_path_factory.mktemp("data"))
    try:
        assert r.sink.wait_for(lambda: r.receiver.goprobes.plan(proc.pid) is not None, 15), (
            "Go runtime probes were not attached to the demo service"
        )
        yield r, proc, base
    finally:
        proc.kill()
        proc.wait()
        r.stop()


def _handler_goid(r: Running, pid: int, trace_id: str) -> int:
    def markers() -> list:
        return [e for e in r.sink.of(pid, "span_marker") if e.attrs["trace_id"] == trace_id]

    assert r.sink.wait_for(lambda: bool(markers()), 10), f"no span marker for trace {trace_id}"
    return markers()[0].goid


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/sleep", "sleep"),
        ("/mutex", "sync.Mutex.Lock"),
        ("/chan", "chan receive"),
        ("/select", "select"),
        ("/net", "IO wait"),
    ],
)
def test_handler_goroutine_parks_with_the_scenario_reason(demo, path: str, reason: str) -> None:
    r, proc, base = demo
    res = _get(f"{base}{path}?ms={MS}")
    goid = _handler_goid(r, proc.pid, res["trace_id"])

    def parks() -> list:
        return [
            e for e in r.sink.of(proc.pid, "park") if e.goid == goid and e.attrs["reason"] == reason
        ]

    assert r.sink.wait_for(lambda: bool(parks()), 10), (
        path,
        [(e.goid, e.attrs) for e in r.sink.of(proc.pid, "park")][-10:],
    )
    longest = max(e.duration_ns for e in parks()) / 1e6
    assert MS * 0.9 <= longest <= MS * 1.1, (path, longest)


def test_span_markers_name_the_handler_goroutine_of_every_server_span(demo) -> None:
    r, proc, base = demo
    ids = {_get(f"{base}/sleep?ms=5")["trace_id"] for _ in range(5)}
    goids = {_handler_goid(r, proc.pid, t) for t in ids}
    assert all(g > 0 for g in goids)
    # net/http serves each connection on its own goroutine: markers from new connections
    # name distinct goroutines, never the same one for every span
    assert len(goids) >= 2


def test_fanout_children_are_linked_to_the_handler(demo) -> None:
    r, proc, base = demo
    res = _get(f"{base}/fanout?ms=20")
    goid = _handler_goid(r, proc.pid, res["trace_id"])

    def children() -> set[int]:
        return {
            e.attrs["child_goid"]
            for e in r.sink.of(proc.pid, "lineage")
            if e.attrs["parent_goid"] == goid
        }

    assert r.sink.wait_for(lambda: len(children()) >= 2, 10)


def test_gc_scenario_shows_stop_the_world(demo) -> None:
    r, proc, base = demo
    t0 = time.time_ns()
    _get(f"{base}/gc")
    assert r.sink.wait_for(lambda: any(e.start_ns >= t0 for e in r.sink.of(proc.pid, "gc_stw")), 10)
    stw = [e for e in r.sink.of(proc.pid, "gc_stw") if e.start_ns >= t0]
    assert any("GC" in e.attrs["reason"] for e in stw), [e.attrs for e in stw]


def _leftover_uprobes(binary: Path) -> list[str]:
    """uprobes on the binary, from tracefs and from perf (BCC uses perf_event_open);
    uprobes sit on the binary's inode, shared by every process that runs it."""
    out = []
    events = Path("/sys/kernel/tracing/uprobe_events")
    if events.exists():
        out += [ln for ln in events.read_text().splitlines() if str(binary) in ln]
    perf = subprocess.run(["bpftool", "-j", "perf", "list"], capture_output=True, text=True)
    out += re.findall(re.escape(str(binary)) + r"[^\"]*", perf.stdout)
    return out


def test_stripped_binary_parks_work_and_the_loss_is_said_once(tmp_path, caplog) -> None:
    subprocess.run(
        ["bash", str(REPO / "scripts" / "build_demo.sh")],
        check=True,
        capture_output=True,
        timeout=900,
    )
    binary = REPO / "build" / "demo-service-stripped"
    before = len(_leftover_uprobes(binary))  # other receivers of this session may probe it
    r = Running(
        {"targets": [{"exe": str(binary)}], "tcp": False, "sched": False}, name="stripped"
    ).start()
    proc, base = _start_demo(binary, tmp_path)
    try:
        assert r.sink.wait_for(lambda: r.receiver.goprobes.plan(proc.pid) is not None, 15)
        plan = r.receiver.goprobes.plan(proc.pid)
        assert plan.span_ctx_offset == 0
        assert any("span markers" in d and "lost" in d for d in plan.degraded)
        t0 = time.time_ns()
        _get(f"{base}/sleep?ms={MS}")

        def sleeps() -> list:
            return [
                e
                for e in r.sink.of(proc.pid, "park")
                if e.attrs["reason"] == "sleep" and e.start_ns >= t0 and e.duration_ns >= MS * 0.9e6
            ]

        assert r.sink.wait_for(lambda: bool(sleeps()), 10)
        assert not r.sink.of(proc.pid, "span_marker")
        said = [m for m in caplog.messages if "span markers" in m]
        assert len(said) == 1, said
    finally:
        proc.kill()
        proc.wait()
        time.sleep(0.3)  # the exit event detaches the probes
        r.stop()
    assert len(_leftover_uprobes(binary)) == before


def test_target_exit_leaves_no_probes_and_the_receiver_keeps_running(tmp_path) -> None:
    binary = REPO / "build" / "demo-service"
    before = len(_leftover_uprobes(binary))  # the module's receiver probes it too
    r = Running(
        {"targets": [{"exe": str(binary)}], "tcp": False, "sched": False}, name="exit"
    ).start()
    try:
        proc, base = _start_demo(binary, tmp_path)
        assert r.sink.wait_for(lambda: r.receiver.goprobes.plan(proc.pid) is not None, 15)
        _get(f"{base}/sleep?ms=5")
        proc.kill()  # crashes while probed
        proc.wait()
        assert r.sink.wait_for(lambda: r.receiver.goprobes.plan(proc.pid) is None, 10)
        proc2, _base2 = _start_demo(binary, tmp_path)  # the restart is re-attached
        try:
            assert r.sink.wait_for(lambda: r.receiver.goprobes.plan(proc2.pid) is not None, 15)
        finally:
            proc2.kill()
            proc2.wait()
    finally:
        r.stop()
    assert len(_leftover_uprobes(binary)) == before
