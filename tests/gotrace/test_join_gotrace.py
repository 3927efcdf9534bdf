"""The goblock processor with `gotrace` as a source (issue 8, item 4).

The gotrace events here come out of the receiver's real converter (`to_events`) from
parser records, so the contract between the two components is what is tested: span logs
of the goblocktrace SpanProcessor join spans exactly like the eBPF uprobe's markers, and a
span observed by both receivers is counted once.
"""

from __future__ import annotations

import pytest
from goblock.helpers import (
    MS,
    PID,
    T0,
    app_span,
    attrs_of,
    categories_ms,
    children,
    ev,
    make,
    marker,
    request,
    run,
    span_id,
    trace_id,
)
from otel_goblock.receivers.gotrace.convert import to_events
from otel_goblock.receivers.gotrace.parser import (
    MarkAssistInterval,
    ParkInterval,
    STWInterval,
    UserLog,
)

from otel_goblock.pdata import Event


def t(ms: float) -> int:
    return T0 + int(ms * MS)


def span_log(n: int, phase: str, at_ms: float, goid: int) -> UserLog:
    """What the parser reads from `trace.Log(ctx, "goblock.span", "<phase> <tid> <sid>")`."""
    return UserLog(
        goid, 0, "goblock.span", f"{phase} {trace_id(n).hex()} {span_id(n).hex()}", t(at_ms)
    )


def gotrace(*records: object) -> list[Event]:
    return list(to_events(records, PID))  # type: ignore[arg-type]


async def test_gotrace_alone_joins_the_span_through_its_end_log() -> None:
    proc, sink, _ = make()
    events = gotrace(
        span_log(1, "start", 0.1, 42),
        ParkInterval(42, t(1), t(91), "sleep"),
        span_log(1, "end", 99.9, 42),
    )
    await run(proc, events, request([(1, 0, 100)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.join"] == "span_marker"
    assert a["goblock.goroutine.id"] == 42
    assert a["goblock.cause"] == "sleep"
    assert a["goblock.park.sleep.ms"] == pytest.approx(90.0)
    assert sum(categories_ms(app_span(sink, 1)).values()) == pytest.approx(100.0)


async def test_a_span_ended_on_another_goroutine_joins_the_ending_one() -> None:
    """As with the uprobe on recordingSpan.End: the end goroutine is the span's. The
    start goroutine's wait (here a channel receive for the hand-off) does not count."""
    proc, sink, _ = make()
    events = gotrace(
        span_log(1, "start", 0, 7),
        ParkInterval(7, t(1), t(100), "chan receive"),
        ParkInterval(9, t(2), t(95), "sleep"),
        span_log(1, "end", 99, 9),
    )
    await run(proc, events, request([(1, 0, 100)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.goroutine.id"] == 9
    assert a["goblock.cause"] == "sleep"
    assert not any(k.startswith("goblock.park.chan") for k in a)


async def test_logs_that_are_not_span_logs_join_nothing() -> None:
    proc, sink, _ = make()
    events = gotrace(
        UserLog(5, 0, "app", f"end {trace_id(1).hex()} {span_id(1).hex()}", t(99)),
        UserLog(5, 0, "goblock.span", f"end {trace_id(1).hex()}", t(99)),
        UserLog(5, 0, "goblock.span", f"finish {trace_id(1).hex()} {span_id(1).hex()}", t(99)),
        ParkInterval(5, t(1), t(91), "sleep"),
    )
    assert all(e.kind == "park" for e in events)
    await run(proc, events, request([(1, 0, 100)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.join"] == "process"
    assert "goblock.goroutine.id" not in a


@pytest.mark.parametrize("prefer", ["ebpf", "gotrace"])
async def test_the_same_waits_from_both_sources_count_once(prefer: str) -> None:
    """ebpf and gotrace both saw the span: same marker, same park, same stop-the-world,
    same mark assist. Each counts once: the categories sum to the duration and each wait
    has one episode child span."""
    proc, sink, _ = make({"prefer_source": prefer})
    ebpf = [
        marker(1, 99.9, 42, tid=300),
        ev("park", 10, 60, goid=42, reason="sleep", source="ebpf"),
        ev("gc_stw", 70, 75, reason="GC mark termination", source="ebpf"),
        ev("gc_assist", 80, 85, goid=42, source="ebpf"),
    ]
    both = gotrace(
        span_log(1, "start", 0.1, 42),
        ParkInterval(42, t(10), t(60), "sleep"),
        STWInterval("GC mark termination", 3, t(70), t(75)),
        MarkAssistInterval(42, t(80), t(85)),
        span_log(1, "end", 99.9, 42),
    )
    await run(proc, ebpf + both, request([(1, 0, 100)]))
    span = app_span(sink, 1)
    cats = categories_ms(span)
    assert sum(cats.values()) == pytest.approx(100.0)
    assert cats["goblock.park.sleep.ms"] == pytest.approx(50.0)
    assert cats["goblock.gc.stw.ms"] == pytest.approx(5.0)
    assert cats["goblock.gc.assist.ms"] == pytest.approx(5.0)
    assert cats["goblock.on_cpu.ms"] == pytest.approx(40.0)
    names = sorted(c.name for c in children(sink, 1))
    assert len(names) == 3, names
    assert len(set(names)) == 3, names
    assert attrs_of(span)["goblock.goroutine.id"] == 42


@pytest.mark.parametrize("prefer", ["ebpf", "gotrace"])
async def test_prefer_source_decides_whose_park_counts(prefer: str) -> None:
    """Both saw the park but disagree on its length: only the preferred one counts."""
    proc, sink, _ = make({"prefer_source": prefer})
    events = [
        marker(1, 99, 42),
        ev("park", 10, 60, goid=42, reason="chan receive", source="ebpf"),
        *gotrace(ParkInterval(42, t(10), t(50), "chan receive"), span_log(1, "end", 99, 42)),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    cats = categories_ms(app_span(sink, 1))
    assert cats["goblock.park.chan_receive.ms"] == pytest.approx(50.0 if prefer == "ebpf" else 40.0)
    assert sum(cats.values()) == pytest.approx(100.0)


async def test_markers_from_both_sources_are_one_join() -> None:
    """The uprobe marker and the span log name the same goroutine: one join, one
    breakdown, whichever arrived first."""
    proc, sink, tel = make()
    events = [
        *gotrace(span_log(1, "end", 99, 42)),
        marker(1, 99.0001, 42, tid=300),
        *gotrace(ParkInterval(42, t(10), t(90), "sync")),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.goroutine.id"] == 42
    assert a["goblock.cause"] == "lock"
    assert tel.total("goblock_spans_joined_goroutine") == 1


async def test_gotrace_parks_count_when_ebpf_reports_only_gc() -> None:
    proc, sink, _ = make({"prefer_source": "ebpf"})
    events = [
        ev("gc_stw", 70, 75, reason="GC mark termination", source="ebpf"),
        *gotrace(
            STWInterval("GC mark termination", 3, t(70), t(75)),
            ParkInterval(42, t(10), t(60), "sleep"),
            span_log(1, "end", 99, 42),
        ),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    cats = categories_ms(app_span(sink, 1))
    assert cats.get("goblock.park.sleep.ms") == pytest.approx(50.0)


async def test_gotrace_mark_assist_wait_reads_as_gc_assist() -> None:
    """Go's tracer names a goroutine parked waiting for mark-assist work "GC mark assist
    wait for work" (seen on the demo's /gc): that is GC assist time, not unexplained."""
    proc, sink, _ = make()
    events = gotrace(
        ParkInterval(42, t(10), t(80), "GC mark assist wait for work"),
        MarkAssistInterval(42, t(80), t(90)),
        span_log(1, "end", 99, 42),
    )
    await run(proc, events, request([(1, 0, 100)]))
    assert attrs_of(app_span(sink, 1))["goblock.cause"] == "gc_assist"


async def test_a_fanout_cut_by_a_window_boundary_reads_whole() -> None:
    """/fanout across two pulled windows: the parent's `sync` wait and the children's
    network waits are each cut in two, the second pieces without a reason (Go's tracer
    gives none for a goroutine already waiting when a trace starts). Carried across the
    windows they are whole again, and the critical path explains all of the wait."""
    from otel_goblock.receivers.gotrace.convert import ParkCarry, SpanCarry
    from otel_goblock.receivers.gotrace.parser import Lineage

    kids = (2, 3, 4, 5)
    window1 = [Lineage(1, k, t(0.5)) for k in kids]
    window1 += [
        ParkInterval(g, t(1), t(60), r, 0, True, False)
        for g, r in [(1, "sync")] + [(k, "network") for k in kids]
    ]
    window2 = [ParkInterval(k, t(60.5), t(100 + k * 0.1), "", 0, False, True) for k in kids]
    window2 += [
        ParkInterval(1, t(60.5), t(100.6), "", 5, False, True),
        span_log(1, "end", 100.9, 1),
    ]
    carry, spans = ParkCarry(), SpanCarry()
    events: list[Event] = []
    for window in (window1, window2):
        carry.next_window()
        events += to_events(window, PID, 0, carry, spans)  # type: ignore[arg-type]
    proc, sink, _ = make()
    await run(proc, events, request([(1, 0, 101)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.cause"] == "network"
    assert a["goblock.park.network.ms"] == pytest.approx(99.5)
    assert "goblock.park.sync.ms" not in a


async def test_a_fanout_wait_cut_by_stop_the_world_keeps_its_critical_path() -> None:
    proc, sink, _ = make()
    kids = (2, 3, 4, 5)
    events = [
        *(ev("lineage", 0.02, goid=1, parent_goid=1, child_goid=k, source="gotrace") for k in kids),
        *gotrace(
            ParkInterval(1, t(0.03), t(100.68), "sync", unblocked_by=4),
            *(ParkInterval(k, t(0.2), t(100.6), "network") for k in kids),
            STWInterval("GC mark termination", 9, t(92.7), t(92.72)),
            span_log(1, "end", 100.76, 1),
        ),
    ]
    await run(proc, events, request([(1, 0, 101)]))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.cause"] == "network"
    assert a.get("goblock.park.sync.ms", 0.0) < 1.0
