"""One span per cause of the DESIGN §3 table: the right cause, category, diagnosis and
episode child span, from real OTLP spans and receiver-shaped events."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import app_span, attrs_of, categories_ms, children, ev, make, marker, request, run

GOID, TID = 17, 301

# name → (events inside a 0..100 ms span on goroutine GOID, cause, category key, ms,
#          diagnosis fragment, episode name, episode attributes)
CASES: dict[str, tuple[list[Any], str, str, float, str, str | None, dict[str, Any]]] = {
    "on_cpu": ([], "on_cpu", "on_cpu", 100.0, "ran on CPU for 100 ms", None, {}),
    "runqueue_os": (
        [ev("runqueue", 10, 80, goid=GOID, tid=TID, after="preempted")],
        "runqueue",
        "runqueue",
        70.0,
        "waiting 70 ms for a CPU (run queue)",
        "goblock: runqueue",
        {"goblock.runqueue.after": "preempted"},
    ),
    "runqueue_go_preempted": (
        [ev("park", 10, 80, goid=GOID, tid=TID, reason="preempted")],
        "runqueue",
        "park.preempted",
        70.0,
        "preempted and waiting 70 ms",
        "goblock: preempted",
        {"goblock.wait.reason": "preempted"},
    ),
    "network_netpoll": (
        [
            ev(
                "syscall",
                4,
                5,
                goid=GOID,
                tid=TID,
                nr=0,
                name="read",
                fd=7,
                fd_target="tcp 127.0.0.1:40000->10.0.0.5:5432",
            ),
            ev("park", 5, 95, goid=GOID, tid=TID, reason="IO wait"),
        ],
        "network",
        "park.io_wait",
        90.0,
        "reading from 10.0.0.5:5432 (netpoll wait)",
        "goblock: IO wait",
        {"goblock.peer.address": "10.0.0.5:5432"},
    ),
    "network_blocking_syscall": (
        [
            ev(
                "syscall",
                10,
                90,
                goid=GOID,
                tid=TID,
                nr=42,
                name="connect",
                fd=7,
                fd_target="tcp 127.0.0.1:40001->10.0.0.9:443",
            )
        ],
        "network",
        "syscall",
        80.0,
        "blocked 80 ms connecting to 10.0.0.9:443",
        "goblock: syscall connect",
        {"goblock.peer.address": "10.0.0.9:443"},
    ),
    "disk": (
        [ev("syscall", 10, 70, goid=GOID, tid=TID, nr=74, name="fsync", fd=9, fd_target="/tmp/x")],
        "disk",
        "syscall",
        60.0,
        "blocked 60 ms in fsync on /tmp/x (disk I/O)",
        "goblock: syscall fsync",
        {"goblock.file.path": "/tmp/x", "goblock.syscall.name": "fsync"},
    ),
    "syscall_pipe": (
        [
            ev(
                "syscall",
                10,
                70,
                goid=GOID,
                tid=TID,
                nr=0,
                name="read",
                fd=3,
                fd_target="pipe:[123]",
            )
        ],
        "syscall",
        "syscall",
        60.0,
        "blocked 60 ms in syscall read on pipe:[123]",
        "goblock: syscall read",
        {"goblock.fd.target": "pipe:[123]"},
    ),
    "lock": (
        [ev("park", 20, 90, goid=GOID, tid=TID, reason="sync.Mutex.Lock")],
        "lock",
        "park.sync_mutex_lock",
        70.0,
        "waited 70 ms for a lock (sync.Mutex.Lock)",
        "goblock: sync.Mutex.Lock",
        {"goblock.wait.reason": "sync.Mutex.Lock"},
    ),
    "lock_rwmutex": (
        [ev("park", 20, 90, goid=GOID, tid=TID, reason="sync.RWMutex.RLock")],
        "lock",
        "park.sync_rwmutex_rlock",
        70.0,
        "for a lock (sync.RWMutex.RLock)",
        "goblock: sync.RWMutex.RLock",
        {},
    ),
    "channel": (
        [ev("park", 20, 90, goid=GOID, tid=TID, reason="chan receive")],
        "channel",
        "park.chan_receive",
        70.0,
        "waited 70 ms on chan receive",
        "goblock: chan receive",
        {"goblock.wait.reason": "chan receive"},
    ),
    "select": (
        [ev("park", 20, 90, goid=GOID, tid=TID, reason="select")],
        "channel",
        "park.select",
        70.0,
        "waited 70 ms on select",
        "goblock: select",
        {},
    ),
    "sleep": (
        [ev("park", 0, 100, goid=GOID, tid=TID, reason="sleep")],
        "sleep",
        "park.sleep",
        100.0,
        "slept 100 ms",
        "goblock: sleep",
        {},
    ),
    "gc_stw": (
        [ev("gc_stw", 10, 80, tid=TID, reason="GC mark termination")],
        "gc_stw",
        "gc.stw",
        70.0,
        "stop-the-world (GC mark termination)",
        "goblock: GC stop-the-world",
        {"goblock.gc.stw.reason": "GC mark termination"},
    ),
    "gc_assist": (
        [ev("gc_assist", 10, 80, goid=GOID, tid=TID)],
        "gc_assist",
        "gc.assist",
        70.0,
        "70 ms in garbage-collector mark assist",
        "goblock: GC mark assist",
        {},
    ),
    "gc_assist_wait": (
        [ev("park", 10, 80, goid=GOID, tid=TID, reason="GC assist wait")],
        "gc_assist",
        "park.gc_assist_wait",
        70.0,
        "for the garbage collector",
        "goblock: GC assist wait",
        {},
    ),
    "grpc_flow_control": (
        [ev("grpc", 10, 80, goid=GOID, tid=TID, type="flow_control_wait", stream_id=3)],
        "grpc_flow_control",
        "grpc.flow_control",
        70.0,
        "HTTP/2 flow control",
        "goblock: gRPC flow control",
        {"goblock.grpc.stream_id": 3},
    ),
    "unattributed_offcpu": (
        [ev("offcpu", 10, 80, goid=GOID, tid=TID, state="blocked")],
        "unattributed",
        "unattributed",
        70.0,
        "70 ms of 100 ms unexplained",
        "goblock: off-CPU",
        {},
    ),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_each_cause(name: str) -> None:
    events, cause, cat, ms, diag, ep_name, ep_attrs = CASES[name]
    proc, sink, _ = make()
    await run(proc, [*events, marker(1, 100, GOID, tid=TID)], request([(1, 0, 100)]))
    span = app_span(sink, 1)
    a = attrs_of(span)
    assert a["goblock.cause"] == cause
    assert a["goblock.goroutine.id"] == GOID
    assert a["goblock.join"] == "span_marker"
    cats = categories_ms(span)
    assert cats[f"goblock.{cat}.ms"] == pytest.approx(ms)
    assert sum(cats.values()) == pytest.approx(100.0)
    assert diag in a["goblock.diagnosis"], a["goblock.diagnosis"]
    kids = children(sink, 1)
    if ep_name is None:
        assert kids == []
        return
    ep = next(k for k in kids if k.name == ep_name)
    assert ep.trace_id == span.trace_id
    assert ep.kind == ep.SPAN_KIND_INTERNAL
    ea = attrs_of(ep)
    assert ea["goblock.cause"] == cause
    assert (ep.end_time_unix_nano - ep.start_time_unix_nano) / 1e6 == pytest.approx(ms)
    for k, v in ep_attrs.items():
        assert ea[k] == v, (k, ea)


async def test_no_goroutine_joined_is_unattributed_but_stop_the_world_still_counts() -> None:
    proc, sink, _ = make()
    events = [
        ev("gc_stw", 10, 30, tid=TID, reason="GC sweep termination"),
        ev("park", 0, 100, goid=99, reason="sleep"),
    ]  # another goroutine's
    await run(proc, events, request([(1, 0, 100)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.join"] == "process"
    assert a["goblock.cause"] == "unattributed"
    assert a["goblock.gc.stw.ms"] == pytest.approx(20.0)
    assert a["goblock.unattributed.ms"] == pytest.approx(80.0)
    assert "no goroutine joined" in a["goblock.diagnosis"]
    assert "goblock.goroutine.id" not in a


async def test_short_waits_count_but_make_no_episode() -> None:
    proc, sink, _ = make({"min_episode": "5ms"})
    events = [ev("park", 10, 13, goid=GOID, reason="chan send"), marker(1, 20, GOID)]
    await run(proc, events, request([(1, 0, 20)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.park.chan_send.ms"] == pytest.approx(3.0)
    assert a["goblock.on_cpu.ms"] == pytest.approx(17.0)
    assert a["goblock.cause"] == "on_cpu"
    assert children(sink, 1) == []


async def test_mostly_unexplained_beats_a_dominant_explained_category() -> None:
    # 40 ms lock, 60 ms off-CPU without reason: unexplained > half → unattributed
    proc, sink, _ = make()
    events = [
        ev("park", 0, 40, goid=GOID, tid=TID, reason="sync.Mutex.Lock"),
        ev("offcpu", 40, 100, goid=GOID, tid=TID, state="blocked"),
        marker(1, 100, GOID, tid=TID),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    assert attrs_of(app_span(sink, 1))["goblock.cause"] == "unattributed"


async def test_kernel_events_without_goid_follow_the_goroutines_thread() -> None:
    """The scheduler tracepoint cannot read the goid: a run-queue wait on the thread the
    span's goroutine ran on is the span's, one on another thread is not."""
    proc, sink, _ = make()
    events = [
        ev("park", 0, 20, goid=GOID, tid=TID, reason="chan receive"),
        ev("runqueue", 30, 80, tid=TID, after="wakeup"),  # goid 0: kernel-only
        ev("runqueue", 30, 90, tid=TID + 1, after="wakeup"),  # another thread
        marker(1, 100, GOID, tid=TID),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.runqueue.ms"] == pytest.approx(50.0)
    assert a["goblock.park.chan_receive.ms"] == pytest.approx(20.0)
    assert a["goblock.cause"] == "runqueue"


async def test_goroutine_attribute_joins_when_no_marker() -> None:
    proc, sink, _ = make()
    events = [ev("park", 10, 90, goid=55, reason="sync.WaitGroup.Wait")]
    await run(proc, events, request([(1, 0, 100)], attrs={1: {"goblock.goroutine.id": 55}}))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.join"] == "attribute"
    assert a["goblock.cause"] == "lock"
    keys = [kv.key for kv in app_span(sink, 1).attributes]
    assert keys.count("goblock.goroutine.id") == 1  # the app's own, not a second one


async def test_tcp_instants_on_the_spans_connection_become_span_events() -> None:
    proc, sink, _ = make()
    conn = "tcp 127.0.0.1:40000->10.0.0.5:5432"
    events = [
        ev("syscall", 4, 5, goid=GOID, tid=TID, name="write", fd_target=conn),
        ev("park", 5, 95, goid=GOID, tid=TID, reason="IO wait"),
        ev(
            "tcp",
            30,
            pid=0,
            type="retransmit",
            saddr="127.0.0.1",
            sport=40000,
            daddr="10.0.0.5",
            dport=5432,
            state="ESTABLISHED",
        ),
        ev(
            "tcp",
            40,
            pid=0,
            type="retransmit",
            saddr="127.0.0.1",
            sport=40999,
            daddr="10.0.0.5",
            dport=5432,
        ),  # another connection
        ev(
            "tcp",
            150,
            pid=0,
            type="reset_received",
            saddr="10.0.0.5",
            sport=5432,
            daddr="127.0.0.1",
            dport=40000,
        ),  # after the span
        marker(1, 100, GOID, tid=TID),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    span = app_span(sink, 1)
    assert [e.name for e in span.events] == ["tcp retransmit"]
    ea = {kv.key: kv.value for kv in span.events[0].attributes}
    assert ea["goblock.tcp.dport"].int_value == 5432
    assert attrs_of(span)["goblock.diagnosis"].startswith("blocked 91 ms writing to 10.0.0.5:5432")


async def test_scheduler_events_with_a_stale_goid_do_not_follow_the_goid() -> None:
    """The kernel tags sched events with the goid cached at the thread's last syscall:
    once the goroutine moved to another thread, that goid is stale and must not count."""
    proc, sink, _ = make()
    events = [
        ev("park", 0, 20, goid=GOID, tid=TID, reason="chan receive"),  # parked on TID
        ev("syscall", 30, 31, goid=GOID, tid=TID + 5, name="write", fd_target="pipe:[9]"),
        ev("offcpu", 40, 80, goid=GOID, tid=TID, state="preempted"),  # TID runs someone else
        marker(1, 100, GOID, tid=TID + 5),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.runqueue.ms"] == 0.0
    assert a["goblock.on_cpu.ms"] == pytest.approx(79.0)


async def test_grpc_instants_become_span_events() -> None:
    proc, sink, _ = make()
    events = [
        ev("grpc", 50, goid=GOID, type="goaway", code=11, debug_data="too_many_pings"),
        ev("grpc", 60, goid=GOID + 1, type="ping"),  # another goroutine's
        marker(1, 100, GOID),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    span = app_span(sink, 1)
    assert [e.name for e in span.events] == ["grpc goaway"]
    ea = {kv.key: kv.value for kv in span.events[0].attributes}
    assert ea["goblock.grpc.debug_data"].string_value == "too_many_pings"
    assert ea["goblock.grpc.code"].int_value == 11


async def test_goaway_during_a_stuck_rpc_is_grpc_keepalive() -> None:
    proc, sink, _ = make()
    events = [
        ev("park", 5, 95, goid=GOID, reason="select"),
        ev("grpc", 90, type="goaway", code=11, debug_data="too_many_pings"),  # process-wide
        marker(1, 100, GOID),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.cause"] == "grpc_keepalive"
    assert "GOAWAY code 11 too_many_pings 90 ms into the RPC" in a["goblock.diagnosis"]
    assert "before that: waited 90 ms on select" in a["goblock.diagnosis"]
    assert a["goblock.park.select.ms"] == pytest.approx(90.0)  # the numbers stay as measured


async def test_scheduler_futex_on_the_goroutines_thread_is_run_queue_time() -> None:
    """/cpu?mode=go: spinners hold the Ps; the handler's thread sleeps in the scheduler's
    futex (goid 0: g0) while the handler is runnable, waiting for a P."""
    proc, sink, _ = make()
    events = [
        ev("syscall", 10, 70, tid=TID, nr=202, name="futex"),  # g0: no goid
        ev("offcpu", 10, 70, tid=TID, state="blocked"),
        ev("syscall", 80, 81, goid=GOID, tid=TID, name="write", fd_target="pipe:[3]"),
        marker(1, 100, GOID, tid=TID),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.cause"] == "runqueue"
    assert a["goblock.runqueue.ms"] == pytest.approx(60.0)
    assert a["goblock.syscall.ms"] == pytest.approx(1.0)
    rq = next(k for k in children(sink, 1) if k.name == "goblock: runqueue")
    assert attrs_of(rq)["goblock.runqueue.after"] == "go scheduler (waiting for a P)"


@pytest.mark.parametrize(("mode", "verb"), [(None, "reading from"), ("w", "writing to")])
async def test_a_netpoll_park_that_names_its_fd_gives_the_peer(mode: str | None, verb: str) -> None:
    """The EAGAIN read before a netpoll park is too short to be emitted as a syscall
    episode; a park event carrying the pollDesc's fd target names the peer instead."""
    proc, sink, _ = make()
    extra = {"mode": mode} if mode else {}
    events = [
        ev(
            "park",
            5,
            95,
            goid=GOID,
            reason="IO wait",
            fd_target="tcp 127.0.0.1:40000->10.0.0.7:6379",
            **extra,
        ),
        marker(1, 100, GOID),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.diagnosis"] == f"blocked 90 ms {verb} 10.0.0.7:6379 (netpoll wait)"
    assert a["goblock.park.io_wait.ms"] == pytest.approx(90.0)
    ep = next(k for k in children(sink, 1) if k.name == "goblock: IO wait")
    assert attrs_of(ep)["goblock.peer.address"] == "10.0.0.7:6379"


def test_a_file_known_only_by_its_name_is_classed_by_the_syscall() -> None:
    """The fd target of a file closed (or its fd reused) before the agent looked is the
    kernel's bare dentry name (fdtarget): an fsync on it is still the disk, not "syscall"
    (the /fsync demo deletes its temp file at once; CI saw the span's cause flip)."""
    from otel_goblock.processors.goblock.categories import syscall_class

    assert syscall_class("fsync", "fsync-123.dat") == "disk"
    assert syscall_class("read", "fsync-123.dat") == "syscall"
    assert syscall_class("fsync", "/var/lib/app/x.dat") == "disk"
    assert syscall_class("fsync", "pipe:[12]") == "syscall"
    assert syscall_class("read", "anon_inode:[eventfd]") == "syscall"
    assert syscall_class("fsync", "/dev/sda") == "syscall"
