"""The join's CPU shortcuts give the answer the plain way gives: an episode span written
as bytes in one join is the span protobuf itself serializes from the same fields, and the
spans of a scope joined stage by stage (every span's join, then every breakdown) get what
each gets joined on its own. (The whole processor, old tree against new, byte for byte:
`benchmarks/goblock_join.py --digest [--tree DIR]`.)"""

from __future__ import annotations

from opentelemetry.proto.trace.v1.trace_pb2 import ScopeSpans, Span
from otel_goblock.processors.goblock.breakdown import analyze, summarize
from otel_goblock.processors.goblock.encode import varint
from otel_goblock.processors.goblock.join import episode_entry, episode_name, put
from otel_goblock.processors.goblock.timeline import WaitReason

from otel_goblock.pdata import Traces

from .helpers import PID, ev, make, marker, request

TCP = "tcp 10.0.0.1:40001->10.0.0.5:5432"


def _events() -> list:
    """Waits of every episode kind on goroutines 7-9 (a netpoll park whose peer comes
    from the read before it, one that names its fd, a child goroutine's syscall on the
    critical path, a stop-the-world over all spans)."""
    return [
        ev("syscall", 1, 1.01, goid=7, tid=3, name="read", fd_target=TCP),
        ev("park", 1.02, 30, goid=7, tid=3, reason="IO wait"),
        ev("runqueue", 30, 31, goid=7, tid=3, after="wakeup"),
        ev("park", 35, 40, goid=7, reason="sync.Mutex.Lock"),
        ev("gc_stw", 41, 43, reason="GC mark termination"),
        ev("syscall", 44, 49, goid=7, tid=3, name="fsync", fd_target="/var/db/wal"),
        ev("offcpu", 50, 52, tid=3, state="preempted"),
        ev("park", 2, 20, goid=8, tid=4, reason="IO wait", fd_target=TCP, mode="w"),
        ev("lineage", 21, goid=8, parent_goid=8, child_goid=9),
        ev("park", 22, 45, goid=8, tid=4, reason="chan receive"),
        ev("syscall", 22, 44.5, goid=9, tid=5, name="connect", fd_target=TCP),
        ev("grpc", 46, 48, goid=8, type="flow_control_wait", conn="0xc1", stream_id=1),
        marker(1, 60, 7, tid=3),
        marker(2, 60, 8, tid=4),
    ]


async def _processor_with_events() -> tuple:
    proc, _, _ = make({"min_episode": "0s"})
    await proc.consume_traces(Traces(raw=b"", span_count=0, events=_events()))
    return proc, proc.timelines.procs[PID]


async def test_an_episode_span_is_the_span_protobuf_writes() -> None:
    proc, tl = await _processor_with_events()
    req = request([(1, 0, 60), (2, 0, 60), (3, 0, 60)], attrs={3: {"goblock.goroutine.id": 7}})
    spans = list(req.resource_spans[0].scope_spans[0].spans)
    prepared = proc._joiner.prepare_scope(spans, tl, [], 0)
    kinds = set()
    for j in prepared:
        for seg in j.bd.episodes:
            kinds.add((seg[2], type(seg[3]) is WaitReason))
            entry = episode_entry(tl, seg, j.trace_id, j.span.span_id, j.an)
            got = ScopeSpans.FromString(entry).spans[0]
            want = Span(
                trace_id=j.trace_id,
                span_id=got.span_id,  # random
                parent_span_id=j.span.span_id,
                name=episode_name(seg),
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=seg[0],
                end_time_unix_nano=seg[1],
            )
            for kv in got.attributes:  # the attribute values are the join's (other tests)
                put(want.attributes, kv.key, getattr(kv.value, kv.value.WhichOneof("value")))
            assert len(got.span_id) == 8 and got.span_id != bytes(8)
            assert entry == b"\x12" + varint(want.ByteSize()) + want.SerializeToString()
    assert len(kinds) >= 6, kinds  # park (both), syscall, runqueue, stop-the-world, gRPC


async def test_a_scope_joined_stage_by_stage_is_each_span_joined_alone() -> None:
    proc, tl = await _processor_with_events()
    req = request(
        [(1, 0, 60), (2, 0, 60), (3, 0, 60), (4, 10, 50)], attrs={3: {"goblock.goroutine.id": 9}}
    )
    spans = list(req.resource_spans[0].scope_spans[0].spans)
    joiner = proc._joiner
    together = joiner.prepare_scope(spans, tl, [], 0)
    assert [j.join for j in together] == ["span_marker", "span_marker", "attribute", "process"]
    for j in together:
        # the plain way: one span's analysis, then its breakdown
        m = tl.marker(j.trace_id, j.span.span_id)
        an = analyze(tl, j.goid, j.start, j.end, joiner.prefer, joiner.depth, m[1] if m else 0)
        bd = summarize(tl, an, j.start, j.end, bool(j.goid), joiner.min_episode_ns)
        assert (j.an.segs, j.an.goroutines, j.an.own, j.an.waited_on, j.an.targets) == (
            an.segs, an.goroutines, an.own, an.waited_on, an.targets,
        )  # fmt: skip
        assert (j.bd.ns, j.bd.episodes) == (bd.ns, bd.episodes)
        if j.grpc is None:
            assert (j.bd.cause, j.bd.diagnosis) == (bd.cause, bd.diagnosis)
    assert any(j.an.waited_on for j in together)  # the critical path was taken
