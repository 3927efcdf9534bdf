"""Run-queue waits and off-CPU intervals of a target's threads.

For the with/without comparison the fixture runs under SCHED_RR pinned to one CPU: other
processes on this shared 2-core machine (other test suites, at any nice level) then cannot
put our worker on a run queue, so "no waits without spinners" is a property of the fixture,
not of the machine's load.  With a spinner thread of the same RR priority on the same CPU,
the worker waits for the spinner's time slice after each wakeup.
"""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.ebpf

PINNED = ("taskset", "-c", "1")
RT = ("chrt", "-r", "10", *PINNED)


def _worker(receiver, run_gbfx, spinners: int, work_ms: int, n: int, prefix: tuple[str, ...]):
    if not (shutil.which("chrt") and shutil.which("taskset")):
        pytest.skip("chrt/taskset missing")
    p = run_gbfx("cpu", str(spinners), str(work_ms), str(n), prefix=prefix)
    tid = int(p.value("tid"))
    assert p.wait(60) == 0
    receiver.sink.wait_for(lambda: False, timeout=0.5)  # let the last records drain
    return p, tid


def test_spinners_put_the_worker_thread_on_the_run_queue(receiver, run_gbfx):
    p, tid = _worker(receiver, run_gbfx, spinners=1, work_ms=20, n=5, prefix=RT)
    waits = [e for e in receiver.sink.of(p.pid, "runqueue") if e.tid == tid]
    assert waits, "no run-queue wait on the worker thread"
    assert sum(e.duration_ns for e in waits) / 1e6 >= 20
    assert {e.attrs["after"] for e in waits} <= {"wakeup", "preempted", "new"}
    # each run-queue wait after a wakeup lies inside a blocked off-CPU interval
    off = [e for e in receiver.sink.of(p.pid, "offcpu") if e.tid == tid]
    for w in waits:
        if w.attrs["after"] == "wakeup":
            assert any(
                o.start_ns <= w.start_ns
                and o.end_ns == w.end_ns
                and o.attrs["runq_ns"] == w.duration_ns
                for o in off
            ), w


def test_no_run_queue_waits_without_spinners(receiver, run_gbfx):
    p, tid = _worker(receiver, run_gbfx, spinners=0, work_ms=20, n=5, prefix=RT)
    assert [e for e in receiver.sink.of(p.pid, "runqueue") if e.tid == tid] == []


def test_preemption_is_told_apart_from_blocking(receiver, run_gbfx):
    # plain CFS, two spinners on the worker's CPU: the tick preempts the worker mid-work
    p, tid = _worker(receiver, run_gbfx, spinners=2, work_ms=50, n=3, prefix=PINNED)
    pre = [
        e
        for e in receiver.sink.of(p.pid, "offcpu")
        if e.tid == tid and e.attrs["state"] == "preempted"
    ]
    assert pre
    assert all(e.attrs["runq_ns"] == e.duration_ns for e in pre)  # runnable all along
    rq = [e for e in receiver.sink.of(p.pid, "runqueue") if e.tid == tid]
    assert "preempted" in {e.attrs["after"] for e in rq}


def test_blocked_offcpu_interval_covers_a_blocking_read(receiver, run_gbfx):
    p = run_gbfx("pipe", "30", "2")
    tid = int(p.value("tid"))
    assert p.wait() == 0
    sink = receiver.sink

    def reads():
        return [e for e in sink.of(p.pid, "syscall") if e.attrs["name"] == "read"]

    assert sink.wait_for(lambda: len(reads()) >= 2)
    off = [e for e in sink.of(p.pid, "offcpu") if e.tid == tid and e.attrs["state"] == "blocked"]
    for r in reads():
        inside = [o for o in off if r.start_ns <= o.start_ns and o.end_ns <= r.end_ns]
        assert inside, r
        o = max(inside, key=lambda x: x.duration_ns)
        assert o.duration_ns >= 0.9 * r.duration_ns
        # the goid cached at sys_enter is carried into the scheduler event
        assert o.goid == r.goid == 1
