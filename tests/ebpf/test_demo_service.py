"""The demo service (examples/demo-service) as a target: /syscall and /fsync episodes.

Uses a receiver of its own that names the demo by `exe`, the way a deployment would.  The
service runs under SCHED_RR so that its timers fire on time on this shared machine (the
injected wait is then what the handler really waits).  OTLP export goes to a closed port
(no collector needed, and never the default 4317 that other suites may use).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from ebpf_harness import REPO, Running

pytestmark = pytest.mark.ebpf


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_binary() -> Path:
    script = REPO / "scripts" / "build_demo.sh"
    if not script.exists():
        pytest.skip("scripts/build_demo.sh not present")
    subprocess.run([str(script)], check=True, cwd=REPO, capture_output=True, timeout=600)
    return REPO / "build" / "demo-service"


@pytest.fixture(scope="module")
def demo(demo_binary, tmp_path_factory):
    r = Running({"targets": [{"exe": str(demo_binary)}], "tcp": False}, name="demo").start()
    port = _free_port()
    dead = _free_port()
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{dead}",
        "OTEL_METRICS_EXPORTER": "none",
    }
    data = tmp_path_factory.mktemp("demo-data")
    proc = subprocess.Popen(
        [
            "chrt",
            "-r",
            "10",
            str(demo_binary),
            "-listen",
            f"127.0.0.1:{port}",
            "-data-dir",
            str(data),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        assert r.sink.wait_for(lambda: proc.pid in r.receiver.targets.pids)
        yield r, proc, base, data
    finally:
        proc.kill()
        proc.wait()
        r.stop()


def _get(url: str) -> dict:
    return json.loads(urllib.request.urlopen(url, timeout=30).read())


def test_demo_syscall_endpoint_gives_a_pipe_read_of_the_injected_length(demo):
    r, proc, base, _ = demo
    t0 = time.time_ns()
    for _ in range(3):
        _get(base + "/syscall?ms=60")
    t1 = time.time_ns()

    def reads():
        return [
            e
            for e in r.sink.of(proc.pid, "syscall")
            if e.attrs["name"] == "read"
            and t0 <= e.start_ns <= t1
            and e.attrs["fd_target"].startswith("pipe:[")
        ]

    assert r.sink.wait_for(lambda: len(reads()) >= 3), r.sink.of(proc.pid, "syscall")[-10:]
    for e in reads():
        assert abs(e.duration_ns / 1e6 - 60) <= 6, e
        assert e.goid > 0  # the handler's goroutine


def test_demo_fsync_endpoint_gives_fsync_episodes_on_its_data_file(demo):
    r, proc, base, data = demo
    r.receiver.set_thresholds(syscall_s=100e-6)  # this disk's fsyncs are often < 1 ms
    try:
        t0 = time.time_ns()
        res = _get(base + "/fsync?ms=100")
        t1 = time.time_ns()
    finally:
        r.receiver.set_thresholds(syscall_s=1e-3)

    def fsyncs():
        return [
            e
            for e in r.sink.of(proc.pid, "syscall")
            if e.attrs["name"] == "fsync" and t0 <= e.start_ns <= t1
        ]

    def kernel_ms() -> float:
        return sum(e.duration_ns for e in fsyncs()) / 1e6

    # the episodes arrive over several polls: wait for the sum, not for the first one
    r.sink.wait_for(lambda: kernel_ms() >= 0.5 * res["fsync_ms"])
    assert fsyncs()
    # the handler closes and removes its file when it returns, possibly before the episodes
    # are decoded: the kernel's record of the file (inode, name) still names it — by path
    # once seen open, by basename at worst; never as another file or ""
    targets = {e.attrs["fd_target"] for e in fsyncs()}
    assert targets <= {str(data / res["file"]), res["file"]}, targets
    # the app's own sum of fsync time vs the kernel's (episodes ≥ 100 µs only): the kernel
    # can only see less, and not much less
    assert kernel_ms() <= res["fsync_ms"] * 1.02 + 0.1
    assert kernel_ms() >= 0.5 * res["fsync_ms"], (kernel_ms(), res)
