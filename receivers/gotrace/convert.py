"""Parser records → pipeline `Event`s: the same kinds the Go runtime uprobes emit.

| record              | Event kind  | goid       | attrs                                 |
|---------------------|-------------|------------|---------------------------------------|
| ParkInterval        | park        | the parked | reason (Go's string), unblocked_by    |
| STWInterval         | gc_stw      | 0 (process-wide) | reason, initiator_goid          |
| MarkAssistInterval  | gc_assist   | the helper | —                                     |
| GCInterval          | gc          | 0          | seq                                   |
| Lineage             | lineage     | parent     | parent_goid, child_goid               |
| UserLog goblock.span "end …"   | span_marker | the ender  | trace_id, span_id, phase="end"   |
| UserLog goblock.span "start …" | span_start  | the starter| trace_id, span_id, phase="start" |

The span logs are written by the app's goblocktrace SpanProcessor
(examples/goblocktrace): `trace.Log(ctx, "goblock.span", "<start|end> <trace id> <span id>")`
on the goroutine that starts / ends the span. `end` becomes the span marker, the same join
key as the eBPF uprobe on `recordingSpan.End` (the goroutine that ended the span); `start`
becomes a `span_start` event. Other user logs, and malformed span logs, are ignored.

Intervals cut by the trace window (began before it, or still open at its end) carry
`clipped: True`: their duration is a lower bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from otel_goblock.receivers.gotrace.parser import (
    GCInterval,
    Lineage,
    MarkAssistInterval,
    ParkInterval,
    Record,
    STWInterval,
    UserLog,
)

from otel_goblock.pdata import Event

SOURCE = "gotrace"
SPAN_LOG_CATEGORY = "goblock.span"
_HEX = frozenset("0123456789abcdef")
_PHASE_KIND = {"end": "span_marker", "start": "span_start"}


def span_log_event(r: UserLog, pid: int) -> Event | None:
    """The span marker (or span start) a goblocktrace log stands for; None when the log is
    not one (another category, a malformed message, no goroutine)."""
    if r.category != SPAN_LOG_CATEGORY or not r.goid:
        return None
    parts = r.message.split()
    if len(parts) != 3:
        return None
    phase, trace_id, span_id = parts[0], parts[1].lower(), parts[2].lower()
    kind = _PHASE_KIND.get(phase)
    if (
        kind is None
        or len(trace_id) != 32
        or len(span_id) != 16
        or not _HEX.issuperset(trace_id)
        or not _HEX.issuperset(span_id)
        or trace_id == "0" * 32
        or span_id == "0" * 16
    ):
        return None
    attrs = {"trace_id": trace_id, "span_id": span_id, "phase": phase}
    return Event(kind, pid, 0, r.goid, r.time_ns, r.time_ns, attrs, SOURCE)


# A park cut by the end of one window continues into the next only across a gap this
# short (one request round trip); a failed fetch leaves a longer gap, bridged by nothing.
MAX_BRIDGE_NS = 1_000_000_000


class ParkCarry:
    """Parks still open when one pulled window ended, held and joined to their
    continuation in the next window.

    Go's tracer gives a goroutine that is already waiting when a trace starts no block
    reason (its GoStatus event has none), and a wait cut in two pieces confuses the join
    (the critical path of a fan-out matches a parent's wait against the moment its last
    child finished: the first piece ends before that and reads as an unexplained `sync`).
    So a park still open at a window's end is not emitted; when the next window starts
    with the same goroutine still waiting, the two become one park with the first
    piece's start and reason, covering the gap between the windows. A held park the next
    window does not continue (or a gap over 1 s: a failed fetch) goes out as it was,
    `clipped`, at the end of that next window. Only for consecutive windows of one
    endpoint (files of a directory need not be consecutive).
    """

    def __init__(self) -> None:
        self.previous: dict[int, ParkInterval] = {}  # goid → the held piece
        self.current: dict[int, ParkInterval] = {}

    def next_window(self) -> None:
        self.previous, self.current = self.current, {}


class SpanCarry:
    """Spans whose start log was seen but whose end log was not, over two windows.

    A span that ends in the gap between two pulled windows (the round trip between one
    trace's stop and the next one's start; measured up to a few ms under GC load) leaves
    no end log. When neither the start's window nor the next one holds the end log, the
    start log stands in: a `span_marker` with `phase: start` naming the goroutine that
    started the span, emitted at the end of that next window (within the processor's
    `join_delay` when it exceeds `window` plus the parse). An end log that arrives later
    still goes out, but the processor keeps the first marker: a span started on one
    goroutine, ended on another, and longer than a window joins the starting one.
    """

    def __init__(self) -> None:
        self.previous: dict[tuple[str, str], Event] = {}
        self.current: dict[tuple[str, str], Event] = {}

    def rotate(self) -> list[Event]:
        """End of a window: the stand-in markers of the spans started two windows ago."""
        out = []
        for e in self.previous.values():
            out.append(
                Event("span_marker", e.pid, 0, e.goid, e.start_ns, e.end_ns, e.attrs, SOURCE)
            )
        self.previous, self.current = self.current, {}
        return out


def _park_events(r: ParkInterval, pid: int, min_park_ns: int) -> Iterator[Event]:
    if r.end_ns - r.start_ns < min_park_ns:
        return
    attrs: dict = {"reason": r.reason or "unknown", "unblocked_by": r.unblocked_by}
    if not (r.start_known and r.end_known):
        attrs["clipped"] = True
    yield Event("park", pid, 0, r.goid, r.start_ns, r.end_ns, attrs, SOURCE)


def to_events(
    records: Iterable[Record],
    pid: int,
    min_park_ns: int = 0,
    carry: ParkCarry | None = None,
    spans: SpanCarry | None = None,
) -> Iterator[Event]:
    yield from _to_events(records, pid, min_park_ns, carry, spans)
    if carry is not None:  # held parks this window did not continue
        for r in carry.previous.values():
            yield from _park_events(r, pid, min_park_ns)
        carry.previous = {}
    if spans is not None:
        yield from spans.rotate()


def _to_events(
    records: Iterable[Record],
    pid: int,
    min_park_ns: int,
    carry: ParkCarry | None,
    spans: SpanCarry | None,
) -> Iterator[Event]:
    for r in records:
        if isinstance(r, ParkInterval):
            if carry is not None:
                if not r.start_known:
                    prev = carry.previous.pop(r.goid, None)
                    if prev is not None and 0 <= r.start_ns - prev.end_ns <= MAX_BRIDGE_NS:
                        r = ParkInterval(
                            r.goid,
                            prev.start_ns,
                            r.end_ns,
                            r.reason or prev.reason,
                            r.unblocked_by,
                            prev.start_known,
                            r.end_known,
                        )
                    elif prev is not None:
                        yield from _park_events(prev, pid, min_park_ns)
                if not r.end_known:
                    carry.current[r.goid] = r  # held until the next window
                    continue
            yield from _park_events(r, pid, min_park_ns)
        elif isinstance(r, Lineage):
            if r.parent_goid:
                attrs = {"parent_goid": r.parent_goid, "child_goid": r.child_goid}
                yield Event("lineage", pid, 0, r.parent_goid, r.time_ns, r.time_ns, attrs, SOURCE)
        elif isinstance(r, STWInterval):
            attrs = {"reason": r.reason, "initiator_goid": r.goid}
            if not (r.start_known and r.end_known):
                attrs["clipped"] = True
            yield Event("gc_stw", pid, 0, 0, r.start_ns, r.end_ns, attrs, SOURCE)
        elif isinstance(r, MarkAssistInterval):
            attrs = {} if r.start_known and r.end_known else {"clipped": True}
            yield Event("gc_assist", pid, 0, r.goid, r.start_ns, r.end_ns, attrs, SOURCE)
        elif isinstance(r, GCInterval):
            attrs = {"seq": r.seq}
            if not (r.start_known and r.end_known):
                attrs["clipped"] = True
            yield Event("gc", pid, 0, 0, r.start_ns, r.end_ns, attrs, SOURCE)
        elif isinstance(r, UserLog):
            marker = span_log_event(r, pid)
            if marker is not None:
                if spans is not None:
                    key = (marker.attrs["trace_id"], marker.attrs["span_id"])
                    if marker.kind == "span_start":
                        spans.current[key] = marker
                    else:
                        spans.current.pop(key, None)
                        spans.previous.pop(key, None)
                yield marker
