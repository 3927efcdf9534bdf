"""Semantic edge cases of the record builder, on hand-built traces (see tracebuilder)."""

from __future__ import annotations

import io

import pytest
from otel_goblock.receivers.gotrace.parser import (
    Lineage,
    MarkAssistInterval,
    ParkInterval,
    SyscallInterval,
    TraceReader,
    UserRegion,
)
from tracebuilder import Gen, build, ev

RUNNING, WAITING, SYSCALL = 2, 4, 3


def _records(data: bytes, **kw) -> list:
    return list(TraceReader(io.BytesIO(data), clock="trace", **kw).records())


def _of(records: list, cls: type) -> list:
    return [r for r in records if isinstance(r, cls)]


@pytest.mark.parametrize("version", [22, 23, 25, 26])
def test_block_then_unblock_on_another_thread(version: int) -> None:
    g = Gen(1)
    reason = g.s("chan receive")
    g.batch(
        1,
        100,
        ev("GoStatus", dt=0, g=7, m=1, gstatus=RUNNING),
        ev("GoBlock", dt=10, reason_string=reason, stack=0),
    )  # g7 blocks at 110
    g.batch(
        2,
        100,
        ev("GoStatus", dt=0, g=8, m=2, gstatus=RUNNING),
        ev("GoUnblock", dt=400, g=7, g_seq=1, stack=0),
    )  # g8 unblocks g7 at 500
    parks = _of(_records(build(version, g)), ParkInterval)
    assert [(p.goid, p.start_ns, p.end_ns, p.reason, p.unblocked_by) for p in parks] == [
        (7, 110, 500, "chan receive", 8)
    ]


def test_unblock_stamped_before_its_block_is_a_zero_length_park() -> None:
    # Clock inversion across CPUs: the unblock (M 2) is stamped 5 ns before the block
    # (M 1). Go's reader reorders by causality; this parser closes the park at once.
    g = Gen(1)
    g.batch(
        1,
        100,
        ev("GoStatus", dt=0, g=7, m=1, gstatus=RUNNING),
        ev("GoBlock", dt=10, reason_string=g.s("sync"), stack=0),
    )  # 110
    g.batch(
        2,
        100,
        ev("GoStatus", dt=0, g=8, m=2, gstatus=RUNNING),
        ev("GoUnblock", dt=5, g=7, g_seq=1, stack=0),
    )  # 105
    parks = _of(_records(build(26, g)), ParkInterval)
    assert len(parks) == 1
    p = parks[0]
    assert (p.goid, p.reason, p.unblocked_by) == (7, "sync", 8)
    assert p.end_ns == p.start_ns  # zero length, not negative


def test_park_spanning_generations_is_one_interval() -> None:
    g1, g2 = Gen(1), Gen(2)
    g1.batch(
        1,
        100,
        ev("GoStatus", dt=0, g=7, m=1, gstatus=RUNNING),
        ev("GoBlock", dt=10, reason_string=g1.s("sleep"), stack=0),
    )  # 110
    g2.batch(
        1,
        5000,
        ev("GoStatus", dt=0, g=7, m=NO_M, gstatus=WAITING),
        ev("GoUnblock", dt=100, g=7, g_seq=1, stack=0),
    )  # 5100
    parks = _of(_records(build(26, g1, g2)), ParkInterval)
    assert [(p.start_ns, p.end_ns, p.reason, p.start_known) for p in parks] == [
        (110, 5100, "sleep", True)
    ]


NO_M = (1 << 64) - 1


def test_goroutine_waiting_before_the_trace_began_is_clipped() -> None:
    g = Gen(1)
    g.batch(
        1,
        100,
        ev("GoStatus", dt=0, g=9, m=NO_M, gstatus=WAITING),
        ev("GoStatus", dt=0, g=8, m=1, gstatus=RUNNING),
        ev("GoUnblock", dt=50, g=9, g_seq=1, stack=0),
    )
    (p,) = _of(_records(build(26, g)), ParkInterval)
    assert (p.goid, p.start_ns, p.end_ns, p.start_known, p.end_known) == (9, 100, 150, False, True)


def test_park_still_open_at_the_end_is_flushed_as_clipped() -> None:
    g = Gen(1)
    g.batch(
        1,
        100,
        ev("GoStatus", dt=0, g=7, m=1, gstatus=RUNNING),
        ev("GoBlock", dt=10, reason_string=g.s("select"), stack=0),
        ev("ProcStop", dt=90),
    )  # last event at 200
    (p,) = _of(_records(build(26, g)), ParkInterval)
    assert (p.start_ns, p.end_ns, p.reason, p.end_known) == (110, 200, "select", False)


def test_syscall_that_lost_its_p_and_lineage() -> None:
    g = Gen(1)
    g.batch(
        1,
        100,
        ev("GoStatus", dt=0, g=7, m=1, gstatus=RUNNING),
        ev("GoCreate", dt=1, new_g=20, new_stack=0, stack=0),
        ev("GoSyscallBegin", dt=9, p_seq=1, stack=0),  # 110
        ev("GoSyscallEndBlocked", dt=1000),  # 1110: runnable, off the M
        ev("GoBlock", dt=5, reason_string=g.s("sync"), stack=0),
    )  # nobody running: no park
    records = _records(build(26, g))
    assert [(s.goid, s.start_ns, s.end_ns, s.blocked) for s in _of(records, SyscallInterval)] == [
        (7, 110, 1110, True)
    ]
    assert [(x.parent_goid, x.child_goid) for x in _of(records, Lineage)] == [(7, 20)]
    assert _of(records, ParkInterval) == []


def test_syscall_status_on_another_thread_binds_that_thread() -> None:
    # At the generation start g7 sits in a syscall on M 5 (status written by M 1); when M 5
    # returns from it, the interval belongs to g7.
    g = Gen(1)
    g.batch(1, 100, ev("GoStatus", dt=0, g=7, m=5, gstatus=SYSCALL))
    g.batch(5, 300, ev("GoSyscallEnd", dt=0))
    (s,) = _of(_records(build(26, g)), SyscallInterval)
    assert (s.goid, s.start_ns, s.end_ns, s.start_known, s.blocked) == (7, 100, 300, False, False)


def test_mark_assist_follows_the_goroutine_across_threads() -> None:
    g = Gen(1)
    g.batch(
        1,
        100,
        ev("GoStatus", dt=0, g=7, m=1, gstatus=RUNNING),
        ev("GCMarkAssistBegin", dt=10, stack=0),  # 110
        ev("GoStop", dt=10, reason_string=g.s("preempted"), stack=0),
    )
    g.batch(
        2, 500, ev("GoStart", dt=0, g=7, g_seq=1), ev("GCMarkAssistEnd", dt=40)
    )  # 540 on another M
    records = _records(build(26, g))
    assert [(a.goid, a.start_ns, a.end_ns) for a in _of(records, MarkAssistInterval)] == [
        (7, 110, 540)
    ]
    assert _of(records, ParkInterval) == []  # a preemption is not a park


def test_nested_regions_and_a_region_ended_without_its_begin() -> None:
    g = Gen(1)
    outer, inner, orphan = g.s("span:aa"), g.s("span:bb"), g.s("before-trace")
    g.batch(
        1,
        100,
        ev("GoStatus", dt=0, g=7, m=1, gstatus=RUNNING),
        ev("UserRegionEnd", dt=1, task=0, name_string=orphan, stack=0),  # 101
        ev("UserRegionBegin", dt=9, task=0, name_string=outer, stack=0),  # 110
        ev("UserRegionBegin", dt=10, task=0, name_string=inner, stack=0),  # 120
        ev("UserRegionEnd", dt=10, task=0, name_string=inner, stack=0),  # 130
        ev("UserRegionEnd", dt=10, task=0, name_string=outer, stack=0),
    )  # 140
    regions = _of(_records(build(26, g)), UserRegion)
    assert [(r.name, r.start_ns, r.end_ns, r.start_known) for r in regions] == [
        ("before-trace", 100, 101, False),
        ("span:bb", 120, 130, True),
        ("span:aa", 110, 140, True),
    ]


def test_coroutine_switch_parks_the_caller_and_runs_the_callee() -> None:
    g = Gen(1)
    g.batch(
        1,
        100,
        ev("GoStatus", dt=0, g=7, m=1, gstatus=RUNNING),
        ev("GoCreateBlocked", dt=10, new_g=30, new_stack=0, stack=0),  # 110: 30 waits
        ev("GoSwitch", dt=10, g=30, g_seq=1),  # 120: 7 parks, 30 runs
        ev("GoSwitch", dt=30, g=7, g_seq=1),
    )  # 150: 30 parks, 7 runs
    records = _records(build(23, g))
    parks = sorted(
        (p.goid, p.start_ns, p.end_ns, p.unblocked_by, p.end_known)
        for p in _of(records, ParkInterval)
    )
    # …and 30 stays parked from 150 to the end of the trace (flushed, end unknown).
    assert parks == [(7, 120, 150, 30, True), (30, 110, 120, 7, True), (30, 150, 150, 0, False)]
    assert [(x.parent_goid, x.child_goid) for x in _of(records, Lineage)] == [(7, 30)]


def test_wall_clock_from_the_clock_snapshot() -> None:
    g = Gen(1, wall_ns=1_800_000_000_000_000_000)
    g.batch(
        1,
        100,
        ev("GoStatus", dt=0, g=7, m=1, gstatus=RUNNING),
        ev("GoBlock", dt=10, reason_string=g.s("sleep"), stack=0),
        ev("GoUnblock", dt=10, g=7, g_seq=1, stack=0),
    )
    reader = TraceReader(io.BytesIO(build(25, g)))
    (p,) = _of(list(reader.records()), ParkInterval)
    assert reader.clock == "wall"
    # The snapshot was taken at tick 0 of the sync batch: wall = snapshot + trace time.
    assert (p.start_ns, p.end_ns) == (1_800_000_000_000_000_110, 1_800_000_000_000_000_120)


def test_frequency_scales_ticks_to_ns() -> None:
    g = Gen(1, freq=15_625_000)  # 64 ns per tick, as on amd64 Linux
    g.batch(
        1,
        1000,
        ev("GoStatus", dt=0, g=7, m=1, gstatus=RUNNING),
        ev("GoBlock", dt=10, reason_string=g.s("sleep"), stack=0),
        ev("GoUnblock", dt=100, g=7, g_seq=1, stack=0),
    )
    (p,) = _of(_records(build(22, g)), ParkInterval)
    assert (p.start_ns, p.end_ns) == (1010 * 64, 1110 * 64)
