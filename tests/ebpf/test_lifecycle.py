"""Attach/detach: targets that come and go, programs removed at shutdown, failure modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ebpf_harness import REPO, Running

pytestmark = pytest.mark.ebpf


def _prog_ids() -> set[int]:
    out = subprocess.run(
        ["bpftool", "-j", "prog", "list"], capture_output=True, text=True, check=True
    ).stdout
    return {p["id"] for p in json.loads(out)}


def test_target_started_later_is_attached_and_detached_at_exit(receiver, run_gbfx):
    p = run_gbfx("sleep", "1")
    p.value("pid")
    assert receiver.sink.wait_for(lambda: p.pid in receiver.receiver.targets.pids, timeout=2)
    assert p.pid in receiver.receiver.program.target_pids()
    assert p.wait() == 0
    assert receiver.sink.wait_for(lambda: p.pid not in receiver.receiver.targets.pids, timeout=3)
    assert p.pid not in receiver.receiver.program.target_pids()


def test_restarted_target_is_reattached(receiver, run_gbfx):
    first = run_gbfx("pipe", "20", "1000")
    first.value("tid")
    assert receiver.sink.wait_for(lambda: first.pid in receiver.receiver.targets.pids)
    first.kill()
    second = run_gbfx("pipe", "20", "3")
    assert second.wait() == 0
    assert receiver.sink.wait_for(lambda: first.pid not in receiver.receiver.targets.pids)
    reads = [e for e in receiver.sink.of(second.pid, "syscall") if e.attrs["name"] == "read"]
    assert receiver.sink.wait_for(
        lambda: (
            len([e for e in receiver.sink.of(second.pid, "syscall") if e.attrs["name"] == "read"])
            >= 3
        )
    ), reads


def _own_prog_ids() -> set[int]:
    """The BPF programs this process holds open (their fds' fdinfo names the id): not
    "new since before", which would also count another process's programs loaded
    meanwhile."""
    ids = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:bpf-prog":
                continue
            with open(f"/proc/self/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            continue  # an fd closed while listing
    return ids


def test_no_bpf_program_left_after_shutdown(gbfx):
    before = _own_prog_ids()
    r = Running({"targets": [{"pid": os.getpid()}], "sched": False, "tcp": False}, name="life")
    r.start()
    try:
        ours = _own_prog_ids() - before
        assert len(ours) >= 4  # sys_enter, sys_exit, process exec/exit
    finally:
        r.stop()
    left = _prog_ids() & ours
    assert left == set(), f"BPF programs left after shutdown: {left}"


def test_receiver_targets_exe_and_pid_specs(gbfx, run_gbfx):
    r = Running({"targets": [{"exe": str(gbfx)}], "sched": False, "tcp": False}, name="exe")
    r.start()
    try:
        p = run_gbfx("pipe", "20", "2")
        assert p.wait() == 0
        assert r.sink.wait_for(
            lambda: any(e.attrs.get("name") == "read" for e in r.sink.of(p.pid, "syscall"))
        )
    finally:
        r.stop()


_SCRIPT = textwrap.dedent("""
    import logging, sys
    sys.path[:0] = [{tests!r}, {tests_root!r}]  # ebpf_harness, and the ebpfgate it imports
    from ebpf_harness import Running
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    r = Running({{"targets": [{{"comm": "x"}}], "required": {required}}}, name="nocap")
    try:
        r.start()
    except RuntimeError as e:
        print("START FAILED:", e)
        sys.exit(3)
    print("RUNNING WITHOUT EBPF:", bool(r.receiver.disabled_reason))
    r.stop()
""")


def _without_caps(required: bool) -> subprocess.CompletedProcess:
    here = Path(__file__).parent
    script = _SCRIPT.format(tests=str(here), tests_root=str(here.parent), required=required)
    return subprocess.run(
        [
            "capsh",
            "--drop=cap_bpf,cap_sys_admin,cap_perfmon",
            "--",
            "-c",
            f'exec "{sys.executable}" -c "$0"',
            script,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_required_receiver_fails_fast_naming_the_missing_capability():
    res = _without_caps(required=True)
    assert res.returncode == 3, res.stdout + res.stderr
    assert "START FAILED" in res.stdout
    assert "CAP_BPF" in res.stdout and "capabilities" in res.stdout


def test_optional_receiver_logs_once_and_the_pipeline_runs_without_it():
    res = _without_caps(required=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "RUNNING WITHOUT EBPF: True" in res.stdout
    assert res.stderr.count("ebpf receiver cannot run") == 1
    assert "CAP_BPF" in res.stderr


def test_syscall_storm_overflowing_the_ring_is_counted_and_pipeline_keeps_running(gbfx, run_gbfx):
    # every syscall of the target becomes an event (threshold 0) into a one-page ring
    r = Running(
        {
            "targets": [{"comm": "^gbfx$"}],
            "sched": False,
            "tcp": False,
            "syscall_threshold": "0",
            "ring_buffer_size": 4096,
            "go_runtime": {"parks": False, "gc": False, "lineage": False, "span_markers": False},
        },
        name="storm",
    )
    r.start()
    try:
        storm = run_gbfx("storm", "2")
        assert storm.wait(30) == 0
        calls = int(storm.value("calls"))
        assert r.sink.wait_for(lambda: r.receiver.lost.get("syscall", 0) > 0, timeout=5)
        lost = r.receiver.lost["syscall"]
        assert r.counter("goblock_events_lost") >= lost > 0
        # bounded: what was delivered plus what was lost cannot exceed what happened
        got = len(r.sink.of(storm.pid, "syscall"))
        assert got + lost <= calls + 10_000
        # still running: a later target's episodes arrive
        r.receiver.set_thresholds(syscall_s=1e-3)
        time.sleep(0.3)
        p = run_gbfx("pipe", "20", "2")
        assert p.wait() == 0
        assert r.sink.wait_for(
            lambda: any(e.attrs.get("name") == "read" for e in r.sink.of(p.pid, "syscall"))
        )
    finally:
        r.stop()
