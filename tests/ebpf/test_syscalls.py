"""Blocking syscall episodes: the right syscall, fd target and duration."""

from __future__ import annotations

import socket
import statistics
import time

import pytest
from otel_goblock.receivers.ebpf import program as program_module

pytestmark = pytest.mark.ebpf


def test_pipe_read_episodes_have_pipe_target_goid_and_injected_duration(receiver, run_gbfx):
    wait_ms, n = 50, 4
    # SCHED_RR: the writer goroutine's timer fires on time even when this shared machine is
    # overloaded, so the injected wait is what the reader really waits
    p = run_gbfx("pipe", str(wait_ms), str(n), prefix=("chrt", "-r", "10"))
    ino = p.value("ino")
    tid = int(p.value("tid"))
    assert p.wait() == 0
    sink = receiver.sink

    def reads():
        return [e for e in sink.of(p.pid, "syscall") if e.attrs["name"] == "read"]

    assert sink.wait_for(lambda: len(reads()) >= n), sink.of(p.pid)
    for e in reads():
        assert e.tid == tid
        assert e.attrs["fd"] == int(p.value("fd"))
        assert e.attrs["fd_target"] == f"pipe:[{ino}]"
        assert e.goid == 1  # the main goroutine, read at sys_enter via FS-8 → g → goid
        assert abs(e.duration_ns / 1e6 - wait_ms) <= 0.1 * wait_ms, e


def test_fsync_episodes_name_the_file_and_match_the_apps_own_timing(receiver, run_gbfx, tmp_path):
    # tmp_path is on disk here (not tmpfs), so fsync waits for the device.  fsync time is
    # the device's, not injected: the app's own measurement of each call is the reference.
    # This disk often completes a 1 MiB fsync in < 1 ms, so the threshold (a BPF map
    # value, changeable at run time) is lowered to 200 µs for this test.
    receiver.receiver.set_thresholds(syscall_s=200e-6)
    try:
        # SCHED_RR so that the app's own clock stops when the syscall returns, not when an
        # overloaded machine next schedules the goroutine
        p = run_gbfx("fsync", str(tmp_path), "20", prefix=("chrt", "-r", "10"))
        path = p.value("path")
        assert p.wait() == 0
    finally:
        receiver.receiver.set_thresholds(syscall_s=1e-3)
    starts = [int(v) for v in p.values("fsync_start_ns")]
    durs = [int(v) for v in p.values("fsync_ns")]
    calls = list(zip(starts, durs, strict=True))  # wall clock, as the app saw each call
    sink = receiver.sink

    def fsyncs():
        return [e for e in sink.of(p.pid, "syscall") if e.attrs["name"] == "fsync"]

    long_calls = [c for c in calls if c[1] >= 400_000]
    if not long_calls:
        pytest.skip(f"no fsync took ≥ 0.4 ms on this disk: {durs}")
    assert sink.wait_for(lambda: len(fsyncs()) >= len(long_calls))
    for e in fsyncs():
        assert e.attrs["fd_target"] == path
    # each episode lies inside one app call (wall clock conversion) and the kernel's
    # duration is what the app measured, less the Go runtime's own syscall entry/exit:
    # within 10 % — except where this shared 2-core machine delayed the goroutine after
    # the syscall returned (the app's clock then runs on): the median must be within 10 %
    judged: list[float] = []
    ratios = []
    for e in fsyncs():
        inside = [c for c in calls if c[0] <= e.start_ns and e.end_ns <= c[0] + c[1]]
        assert len(inside) == 1, (e, calls)
        app = inside[0][1]
        assert e.duration_ns <= app
        ratios.append(round(e.duration_ns / app, 3))
        if app >= 1_000_000:  # below 1 ms the runtime's fixed µs overhead is > 10 %
            judged.append(e.duration_ns / app)
    if judged:
        assert statistics.median(judged) >= 0.9, ratios


def test_syscall_histogram_metric_counts_the_reads(receiver, run_gbfx):
    p = run_gbfx("pipe", "40", "3")
    assert p.wait() == 0
    req = receiver.receiver.build_metrics().message()
    names = {
        m.name: m for rm in req.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    hist = names["goblock.syscall.duration"]
    reads = [
        dp
        for dp in hist.histogram.data_points
        if any(a.key == "syscall" and a.value.string_value == "read" for a in dp.attributes)
    ]
    assert reads
    dp = reads[0]
    assert dp.count == sum(dp.bucket_counts)
    # 40 ms falls in the (32.768 ms, 65.536 ms] bucket
    idx = list(dp.explicit_bounds).index(65.536e-3)
    assert dp.bucket_counts[idx] >= 3
    assert "goblock.offcpu.duration" in names and "goblock.runqueue.latency" in names


def test_per_cpu_histograms_read_in_one_batch_match_a_per_entry_read(receiver, run_gbfx):
    """The batch read (entry-major per-CPU values, summed) against BCC's per-key read of
    the same cumulative counters, taken before and after it: before ≤ batch ≤ after."""
    p = run_gbfx("pipe", "5", "3")
    assert p.wait() == 0
    rcv = receiver.receiver
    for name in ("sched_hist", "syscall_sum"):
        t = rcv.program.table(name)

        def per_key(t=t):
            return [sum(int(x) for x in t.getvalue(t.Key(i))) for i in range(t.max_entries)]

        before = per_key()
        batch = rcv._percpu_totals(name)
        after = per_key()
        assert len(batch) == len(before) and any(batch), name
        assert all(b <= x <= a for b, x, a in zip(before, batch, after, strict=True)), name


EAGAIN = -11


def _wait_on_a_socket(run_gbfx, wait_ms: int):  # type: ignore[no-untyped-def]
    """A Go target whose socket read returns EAGAIN and then waits `wait_ms` in netpoll
    (the peer here says nothing until it closes); (the process, the listener's port)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))  # a free port
    lst.listen(1)
    port = lst.getsockname()[1]
    p = run_gbfx("tcpreset", str(port))  # dials, writes "hi", reads until EOF
    try:
        conn, _ = lst.accept()
        assert conn.recv(2) == b"hi"
        time.sleep(wait_ms / 1000)
        conn.close()
        p.value("err")  # EOF: its next syscall, which ends the wait
    finally:
        lst.close()
    return p, port


def test_netpoll_peers_emit_the_eagain_read_of_a_wait_that_lasted(receiver, run_gbfx):
    """`netpoll_peers` (CFG_NETPOLL_PEERS): the EAGAIN read before a netpoll wait is kept in
    the kernel and emitted at the goroutine's next syscall when the wait lasted at least
    syscall_threshold; a shorter wait's is dropped; off, none is kept."""
    sink = receiver.sink
    rcv = receiver.receiver

    def eagain(pid: int, port: int) -> list:  # type: ignore[type-arg]
        return [
            e
            for e in sink.of(pid, "syscall")
            if e.attrs["ret"] == EAGAIN and e.attrs["fd_target"].endswith(f":{port}")
        ]

    p, port = _wait_on_a_socket(run_gbfx, 100)  # 100 ms >= the 1 ms threshold
    assert sink.wait_for(lambda: bool(eagain(p.pid, port))), sink.of(p.pid, "syscall")
    e = eagain(p.pid, port)[0]
    assert e.goid and e.attrs["fd_target"].startswith("tcp 127.0.0.1:")
    assert e.end_ns - e.start_ns < 100_000_000  # the syscall itself, not the wait

    rcv.set_thresholds(syscall_s=5.0)  # the same wait is now too short to name its peer
    try:
        p, port = _wait_on_a_socket(run_gbfx, 100)
        time.sleep(0.5)  # what the kernel has is drained within a poll interval
        assert eagain(p.pid, port) == []
    finally:
        rcv.set_thresholds(syscall_s=0.001)

    program = rcv.program
    program.set_config(program_module.CFG_NETPOLL_PEERS, 0)
    try:
        p, port = _wait_on_a_socket(run_gbfx, 100)
        time.sleep(0.5)
        assert eagain(p.pid, port) == []
    finally:
        program.set_config(program_module.CFG_NETPOLL_PEERS, 1)
