"""Properties of the whole processor on random inputs: whatever the events and spans
(nested, overlapping, shared goroutines), the output is valid OTLP, every app span's
categories sum to its duration, and every episode sits inside its parent span."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_goblock.pdata import Traces

from .helpers import MS, ev, make, marker, request, span_id

REASONS = ["chan receive", "sleep", "sync.Mutex.Lock", "IO wait", "select", "wëird reason"]


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list, list, dict]:
    spans = []
    for n in range(1, draw(st.integers(1, 5)) + 1):
        a = draw(st.integers(0, 80))
        spans.append((n, a, a + draw(st.integers(0, 60))))
    events: list = [ev("offcpu", -500, -499, tid=99)]  # the process is observed
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(
            st.sampled_from(
                [
                    "park",
                    "syscall",
                    "offcpu",
                    "runqueue",
                    "gc_stw",
                    "gc_assist",
                    "lineage",
                    "tcp",
                    "grpc",
                ]
            )
        )
        a = draw(st.integers(-20, 150))
        b = a + draw(st.integers(0, 50))
        goid = draw(st.sampled_from([0, 1, 2, 3]))
        tid = draw(st.sampled_from([0, 7, 8]))
        if kind == "park":
            events.append(
                ev(
                    kind,
                    a,
                    b,
                    goid=goid,
                    tid=tid,
                    reason=draw(st.sampled_from(REASONS)),
                    source=draw(st.sampled_from(["ebpf", "gotrace"])),
                )
            )
        elif kind == "syscall":
            events.append(
                ev(
                    kind,
                    a,
                    b,
                    goid=goid,
                    tid=tid,
                    name="read",
                    fd_target=draw(st.sampled_from(["", "/tmp/\udcff", "tcp a:1->b:2"])),
                )
            )
        elif kind == "lineage":
            events.append(ev(kind, a, goid=1, parent_goid=1, child_goid=draw(st.integers(2, 3))))
        elif kind == "tcp":
            events.append(
                ev(kind, a, pid=0, type="retransmit", saddr="a", sport=1, daddr="b", dport=2)
            )
        elif kind == "grpc":
            events.append(
                ev(
                    kind,
                    a,
                    b,
                    goid=goid,
                    type=draw(st.sampled_from(["flow_control_wait", "goaway", "ping"])),
                )
            )
        else:
            events.append(ev(kind, a, b, goid=goid, tid=tid, state="blocked"))
    goids = {}
    for n, _, b in spans:
        how = draw(st.sampled_from(["marker", "attr", "none"]))
        g = draw(st.integers(1, 3))
        if how == "marker":
            events.append(marker(n, b, g, tid=7))
            if draw(st.booleans()):
                events.append(marker(n, b, g, tid=7))  # duplicate
        elif how == "attr":
            goids[n] = {"goblock.goroutine.id": g}
    return spans, events, goids


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario(), st.sampled_from(["0s", "1ms", "20ms"]))
def test_random_inputs_keep_the_invariants(case: tuple[list, list, dict], min_ep: str) -> None:
    spans, events, attrs = case
    asyncio.run(_check(spans, events, attrs, min_ep))


async def _check(spans: list, events: list, attrs: dict, min_ep: str) -> None:
    proc, sink, _ = make({"min_episode": min_ep})
    await proc.start(None)  # type: ignore[arg-type]
    await proc.consume_traces(Traces(raw=b"", span_count=0, events=events))
    await proc.consume_traces(Traces(raw=request(spans, attrs=attrs).SerializeToString()))
    await proc.shutdown()
    out = sink.spans()
    assert sum(t.span_count for t in sink.got) == len(out)
    by_id = {s.span_id: s for s in out}
    app_ids = {span_id(n) for n, _, _ in spans}
    for s in out:
        if s.span_id in app_ids:
            vals = {kv.key: kv.value for kv in s.attributes}
            cats = [
                v.double_value
                for k, v in vals.items()
                if k.startswith("goblock.") and k.endswith(".ms")
            ]
            assert all(c >= 0 for c in cats)
            dur = (s.end_time_unix_nano - s.start_time_unix_nano) / MS
            assert abs(sum(cats) - dur) < 1e-6
            assert vals["goblock.cause"].string_value
        else:
            parent = by_id[s.parent_span_id]
            assert s.trace_id == parent.trace_id
            assert parent.start_time_unix_nano <= s.start_time_unix_nano
            assert s.end_time_unix_nano <= parent.end_time_unix_nano
            assert s.name.startswith("goblock: ")
