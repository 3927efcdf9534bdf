"""The join rules: span markers (deduplicated), lineage and the critical path, one source
per process for park/GC events, the sum invariant under random events."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from otel_goblock.processors.goblock.breakdown import analyze, summarize
from otel_goblock.processors.goblock.timeline import SOURCES, Timelines

from .helpers import (
    MS,
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


async def test_duplicate_span_markers_are_one_join() -> None:
    """The SDK's End can fire the uprobe twice: the first marker wins, stored once."""
    proc, sink, _ = make()
    events = [
        ev("park", 10, 60, goid=8, reason="sync.Mutex.Lock"),
        marker(1, 100, 8),
        marker(1, 100.5, 8),
    ]
    await proc.start(None)  # type: ignore[arg-type]
    from otel_goblock.pdata import Traces

    await proc.consume_traces(Traces(raw=b"", span_count=0, events=events))
    assert len(proc.timelines.procs[4242].markers) == 1
    await proc.consume_traces(Traces(raw=request([(1, 0, 100)]).SerializeToString()))
    await proc.shutdown()
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.goroutine.id"] == 8
    assert a["goblock.park.sync_mutex_lock.ms"] == pytest.approx(50.0)
    assert len(children(sink, 1)) == 1


async def test_concurrent_spans_each_get_their_own_goroutine() -> None:
    """Two overlapping spans of one process: no cross-talk between goroutines."""
    proc, sink, _ = make()
    events = [
        ev("park", 0, 90, goid=10, reason="sleep"),
        ev("park", 5, 95, goid=11, reason="sync.Mutex.Lock"),
        marker(1, 100, 10),
        marker(2, 100, 11),
    ]
    await run(proc, events, request([(1, 0, 100), (2, 0, 100)]))
    assert attrs_of(app_span(sink, 1))["goblock.cause"] == "sleep"
    assert attrs_of(app_span(sink, 2))["goblock.cause"] == "lock"


def fanout_events() -> list:
    """/fanout: the handler (goid 1) spawns 3 children that each read from a backend,
    then waits on a channel; the slowest child (goid 4) finishes last."""
    evs = [
        ev("lineage", 1, goid=1, parent_goid=1, child_goid=2),
        ev("lineage", 1, goid=1, parent_goid=1, child_goid=3),
        ev("lineage", 1, goid=1, parent_goid=1, child_goid=4),
        ev("park", 2, 98, goid=1, reason="chan receive"),
        marker(1, 100, 1),
    ]
    for goid, until in ((2, 30), (3, 60), (4, 97)):
        evs += [
            ev(
                "syscall",
                2,
                3,
                goid=goid,
                name="write",
                fd_target=f"tcp 127.0.0.1:4000{goid}->10.0.0.{goid}:80",
            ),
            ev("park", 3, until, goid=goid, reason="IO wait"),
        ]
    return evs


async def test_fanout_wait_is_explained_by_the_last_child_to_finish() -> None:
    proc, sink, _ = make()
    await run(proc, fanout_events(), request([(1, 0, 100)]))
    span = app_span(sink, 1)
    a = attrs_of(span)
    assert a["goblock.cause"] == "network"  # not channel: the critical path
    assert a["goblock.goroutine.id"] == 1
    assert "10.0.0.4:80" in a["goblock.diagnosis"]
    assert "child goroutine 4" in a["goblock.diagnosis"]
    cats = categories_ms(span)
    assert sum(cats.values()) == pytest.approx(100.0)
    assert cats["goblock.park.io_wait.ms"] == pytest.approx(94.0)  # child 4: 3..97
    ep = next(k for k in children(sink, 1) if k.name == "goblock: IO wait")
    assert attrs_of(ep)["goblock.goroutine.id"] == 4
    assert attrs_of(ep)["goblock.peer.address"] == "10.0.0.4:80"


async def test_fanout_without_lineage_reads_as_channel() -> None:
    proc, sink, _ = make()
    events = [e for e in fanout_events() if e.kind != "lineage"]
    await run(proc, events, request([(1, 0, 100)]))
    assert attrs_of(app_span(sink, 1))["goblock.cause"] == "channel"


async def test_critical_path_can_be_turned_off() -> None:
    proc, sink, _ = make({"critical_path_depth": 0})
    await run(proc, fanout_events(), request([(1, 0, 100)]))
    assert attrs_of(app_span(sink, 1))["goblock.cause"] == "channel"


@pytest.mark.parametrize("prefer", ["ebpf", "gotrace"])
async def test_a_process_seen_by_both_sources_is_counted_once(prefer: str) -> None:
    proc, sink, _ = make({"prefer_source": prefer})
    events = [
        ev("park", 10, 60, goid=8, reason="sync.Mutex.Lock", source="ebpf"),
        ev("park", 10.2, 60.1, goid=8, reason="sync", source="gotrace"),
        ev("gc_stw", 70, 75, reason="GC mark termination", source="ebpf"),
        ev("gc_stw", 70.1, 75.1, reason="stop-the-world (GC mark termination)", source="gotrace"),
        ev("syscall", 80, 90, goid=8, name="fsync", fd_target="/data/wal", source="ebpf"),
        marker(1, 100, 8),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    span = app_span(sink, 1)
    cats = categories_ms(span)
    assert sum(cats.values()) == pytest.approx(100.0)
    parks = {k: v for k, v in cats.items() if k.startswith("goblock.park.")}
    want = "goblock.park.sync_mutex_lock.ms" if prefer == "ebpf" else "goblock.park.sync.ms"
    assert list(parks) == [want]
    assert parks[want] == pytest.approx(50.0 if prefer == "ebpf" else 49.9)
    assert cats["goblock.gc.stw.ms"] == pytest.approx(5.0)
    assert cats["goblock.syscall.ms"] == pytest.approx(10.0)  # kernel events: never arbitrated
    names = [k.name for k in children(sink, 1)]
    assert len([n for n in names if "stop-the-world" in n]) == 1


# -- the sum invariant -------------------------------------------------------------------

KINDS = ["park", "syscall", "offcpu", "runqueue", "gc_stw", "gc_assist", "grpc"]
REASONS = ["chan receive", "sleep", "sync.Mutex.Lock", "IO wait", "select", "preempted", "x y"]


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list, int, int]:
    n = draw(st.integers(0, 30))
    evs = []
    for _ in range(n):
        kind = draw(st.sampled_from(KINDS))
        a = draw(st.integers(-50, 150))
        b = a + draw(st.integers(0, 120))
        goid = draw(st.sampled_from([0, 1, 1, 2]))
        tid = draw(st.sampled_from([0, 7, 8]))
        source = draw(st.sampled_from(["ebpf", "gotrace"]))
        attrs: dict = {}
        if kind == "park":
            attrs["reason"] = draw(st.sampled_from(REASONS))
        elif kind == "syscall":
            attrs.update(
                name=draw(st.sampled_from(["read", "fsync", "futex"])),
                fd_target=draw(st.sampled_from(["", "/tmp/x", "tcp a:1->b:2"])),
            )
        elif kind == "offcpu":
            attrs["state"] = draw(st.sampled_from(["blocked", "preempted"]))
        elif kind == "grpc":
            attrs["type"] = "flow_control_wait"
        evs.append(ev(kind, a, b, goid=goid, tid=tid, source=source, **attrs))
    if draw(st.booleans()):
        evs.append(ev("lineage", draw(st.integers(0, 50)), goid=1, parent_goid=1, child_goid=2))
    start = draw(st.integers(0, 50))
    end = start + draw(st.integers(0, 100))
    return evs, start, end


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timelines(), st.sampled_from([0, 1]), st.sampled_from(["ebpf", "gotrace"]))
def test_categories_are_disjoint_and_sum_to_the_duration(
    case: tuple[list, int, int], goid: int, prefer: str
) -> None:
    evs, a, b = case
    tls = Timelines(10_000)
    tls.add(evs)
    tl = tls.proc(4242)
    start, end = T0 + a * MS, T0 + b * MS
    an = analyze(tl, goid, start, end, SOURCES[prefer], 3, end_tid=7)
    # segments tile the span: ordered, no gap, no overlap
    pos = start
    for seg in an.segs:
        assert seg[0] == pos and seg[1] > seg[0]
        pos = seg[1]
    assert pos == end or (not an.segs and start == end)
    bd = summarize(tl, an, start, end, bool(goid), MS)
    assert all(v >= 0 for v in bd.ns.values())
    assert sum(bd.ns.values()) == end - start
    assert bd.cause in (
        "on_cpu",
        "runqueue",
        "network",
        "disk",
        "syscall",
        "lock",
        "channel",
        "sleep",
        "gc_stw",
        "gc_assist",
        "grpc_flow_control",
        "unattributed",
    )


async def test_an_episode_goes_to_the_innermost_span_of_its_goroutine() -> None:
    """A DB client span inside the handler span, both on goroutine 8: the wait shows
    once, under the DB span; both spans still count its time."""
    proc, sink, _ = make()
    req = request([(1, 0, 100), (2, 20, 80)])
    inner = req.resource_spans[0].scope_spans[0].spans[1]
    inner.trace_id = trace_id(1)
    inner.parent_span_id = span_id(1)
    events = [
        ev("syscall", 25, 26, goid=8, name="write", fd_target="tcp 127.0.0.1:40000->10.0.0.5:5432"),
        ev("park", 26, 75, goid=8, reason="IO wait"),
        ev("park", 85, 95, goid=8, reason="sync.Mutex.Lock"),
        marker(1, 100, 8),
        marker(2, 80, 8, trace_id=trace_id(1).hex()),
    ]
    await run(proc, events, req)
    outer_kids = [k.name for k in children(sink, 1) if k.name.startswith("goblock:")]
    inner_kids = [k.name for k in children(sink, 2)]
    assert outer_kids == ["goblock: sync.Mutex.Lock"]
    assert inner_kids == ["goblock: syscall write", "goblock: IO wait"]
    assert attrs_of(app_span(sink, 1))["goblock.park.io_wait.ms"] == pytest.approx(49.0)
    assert attrs_of(app_span(sink, 2))["goblock.park.io_wait.ms"] == pytest.approx(49.0)


async def test_tcp_events_of_every_child_connection_reach_the_span() -> None:
    """A retransmit on the connection of a child that was not the last to finish still
    belongs to the span (its goroutines count for it)."""
    proc, sink, _ = make()
    events = [
        *fanout_events(),
        ev(
            "tcp",
            20,
            pid=0,
            type="retransmit",
            saddr="127.0.0.1",
            sport=40002,
            daddr="10.0.0.2",
            dport=80,
        ),
    ]
    await run(proc, events, request([(1, 0, 100)]))
    span = app_span(sink, 1)
    assert [e.name for e in span.events] == ["tcp retransmit"]


async def test_many_sequential_child_spans_on_one_goroutine_each_own_their_wait() -> None:
    """A batch loop: 400 DB spans one after another under one parent, all on goroutine 5."""
    proc, sink, _ = make({"min_episode": "500us"})
    n = 400
    req = request([(0, 0, 2 * n + 1)] + [(i, 2 * i - 1, 2 * i) for i in range(1, n + 1)])
    for s in req.resource_spans[0].scope_spans[0].spans:
        s.trace_id = trace_id(0)
    events = [marker(0, 2 * n + 1, 5, trace_id=trace_id(0).hex())]
    for i in range(1, n + 1):
        events.append(ev("park", 2 * i - 0.9, 2 * i - 0.1, goid=5, reason="IO wait"))
        events.append(marker(i, 2 * i, 5, trace_id=trace_id(0).hex()))
    await run(proc, events, req)
    kids = [s for s in sink.spans() if s.name == "goblock: IO wait"]
    assert len(kids) == n  # once each, under its own DB span
    assert {k.parent_span_id for k in kids} == {span_id(i) for i in range(1, n + 1)}
    assert attrs_of(app_span(sink, 0))["goblock.park.io_wait.ms"] == pytest.approx(0.8 * n)
