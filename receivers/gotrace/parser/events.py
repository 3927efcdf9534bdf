"""Decoding a generation's event batches into one time-ordered stream.

Each M (OS thread) writes its own batches, in order; the whole program's order is the
merge of the per-M streams by timestamp. Go's reader additionally checks each event
against the scheduler state machine and, when the clock disagrees with causality (a
GoUnblock stamped a few ns before the GoBlock it answers, on another CPU), picks the event
that can legally come next. This decoder merges by timestamp only (keeping every M's own
order intact) and leaves the tolerance of those rare inversions to the interpreter.

An event is a flat tuple `(time_ns, m, type, a1, a2, a3)`: the first three arguments
after the timestamp delta (0 where the event has fewer; a later argument, always a stack
id, is skipped, and so are multi-byte arguments the interpreter never reads — see
`_WANT`); time is trace-clock ns computed exactly as Go does (float64 ns-per-tick times the batch
base, plus each delta converted separately), plus `offset_ns` (0 for trace clock, the
generation's wall-clock offset for wall time).

Merging is done a window at a time, in C: every M has one decoded batch in hand; all
events up to the earliest "last timestamp" among those batches are safe to order (no M
can produce an earlier one later), so they are sorted together (`list.sort` on a few
pre-sorted runs is a linear merge) and handed on as one chunk. Memory stays at one
decoded batch per M.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator
from operator import itemgetter

from .errors import TraceParseError
from .generation import Generation
from .spec import Ev, VersionSpec
from .wire import Batch

RawEvent = tuple[int, int, int, int, int, int]

# How many of an event's first three arguments (after dt) the interpreter reads: a
# multi-byte argument past that count is skipped, not decoded (sequence numbers and stack
# ids make up most of the long varints of a trace). Default: all three.
_WANT = [3] * 256
for _t in (
    Ev.GO_CREATE,
    Ev.GO_CREATE_BLOCKED,
    Ev.GO_START,
    Ev.GO_BLOCK,
    Ev.GO_UNBLOCK,
    Ev.GO_SWITCH,
    Ev.GO_SWITCH_DESTROY,
    Ev.GO_SYSCALL_BEGIN,
    Ev.STW_BEGIN,
    Ev.GC_BEGIN,
    Ev.USER_TASK_END,
    Ev.PROC_START,
    Ev.PROC_STEAL,
):
    _WANT[_t] = 1
for _t in (Ev.USER_REGION_BEGIN, Ev.USER_REGION_END):
    _WANT[_t] = 2

_TIME = itemgetter(0)


def _uvarint_slow(data: bytes, pos: int, offset: int) -> tuple[int, int]:
    """A multi-byte uleb128 at `pos` (the decoder inlines the one-byte case)."""
    v = 0
    shift = 0
    while True:
        c = data[pos]
        pos += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, pos
        shift += 7
        if shift > 63:
            raise TraceParseError("varint longer than 10 bytes", offset=offset)


def decode_batch(
    b: Batch, nargs: list[int], version: int, f: float, offset_ns: int, floor_ns: int
) -> list[RawEvent]:
    """All events of one batch, in order. `floor_ns`: last time of the M's previous batch.

    The parser's hottest loop. It indexes a list of the batch's bytes (CPython
    specialises list indexing, not bytes indexing), inlines one-byte varints, builds one
    flat tuple per event, and skips rather than decodes the long varints the interpreter
    never reads (GoStart/GoUnblock sequence numbers, stacks).
    """
    raw = b.data
    end = len(raw)
    data = list(raw)
    data.append(0)  # a sentinel: a varint cut by the batch's end stops there
    m = b.m
    pos = 0
    boff = b.offset
    # ns per tick is a whole number on the common platforms (64 on amd64 Linux, 1 where
    # the clock is nanotime): then an int product equals Go's float64 one for any delta
    # below 2**53 ticks. Otherwise decode ticks and convert afterwards, delta by delta.
    fi = int(f) if f.is_integer() else 1
    last = int(b.time * f) + offset_ns if fi != 1 or f == 1.0 else b.time
    out: list[RawEvent] = []
    append = out.append
    slow = _uvarint_slow
    want = _WANT
    try:
        while pos < end:
            typ = data[pos]
            k = nargs[typ]
            v = data[pos + 1]
            pos += 2
            if v >= 0x80:
                if not k:
                    raise TraceParseError(_not_timed(typ, version), offset=boff)
                v, pos = slow(data, pos - 1, boff)
            last += v * fi
            if k < 3:
                if k == 2:
                    a1 = data[pos]
                    pos += 1
                    if a1 >= 0x80:
                        a1, pos = slow(data, pos - 1, boff)
                    append((last, m, typ, a1, 0, 0))
                elif k:
                    append((last, m, typ, 0, 0, 0))
                else:
                    raise TraceParseError(_not_timed(typ, version), offset=boff)
                continue
            a1 = data[pos]
            pos += 1
            if a1 >= 0x80:
                a1, pos = slow(data, pos - 1, boff)
            a2 = data[pos]
            pos += 1
            if a2 >= 0x80:
                if want[typ] > 1:
                    a2, pos = slow(data, pos - 1, boff)
                else:
                    while data[pos] >= 0x80:
                        pos += 1
                    pos += 1
                    a2 = 0
            if k == 3:
                append((last, m, typ, a1, a2, 0))
                continue
            a3 = data[pos]
            pos += 1
            if a3 >= 0x80:
                if want[typ] > 2:
                    a3, pos = slow(data, pos - 1, boff)
                else:
                    while data[pos] >= 0x80:
                        pos += 1
                    pos += 1
                    a3 = 0
            if k == 5:  # the fourth argument is always a stack id: never needed
                while data[pos] >= 0x80:
                    pos += 1
                pos += 1
            append((last, m, typ, a1, a2, a3))
    except IndexError:
        raise TraceParseError(
            f"truncated event in batch of M {m} (generation {b.gen})", offset=boff
        ) from None
    if pos != end:  # the last event read into the sentinel
        raise TraceParseError(
            f"truncated event in batch of M {m} (generation {b.gen})", offset=boff
        )
    if fi == 1 and f != 1.0:
        out = _ticks_to_ns(out, b.time, f, offset_ns)
    if out and out[0][0] < floor_ns:
        # This M's clock went backwards between two of its batches (it moved to a CPU
        # whose clock lags): keep the M's own order, as Go does, by clamping.
        out = [(max(t, floor_ns), *rest) for t, *rest in out]
    return out


def _not_timed(typ: int, version: int) -> str:
    return f"event type {typ} is not a timed event of go 1.{version}"


def _ticks_to_ns(evs: list[RawEvent], base: int, f: float, offset_ns: int) -> list[RawEvent]:
    """Times decoded in ticks → ns as Go computes them: the batch base and then each delta
    converted separately (float64), for a clock whose ns per tick is not whole."""
    prev = base
    acc = int(base * f) + offset_ns
    out = []
    for t, *rest in evs:
        acc += int((t - prev) * f)
        prev = t
        out.append((acc, *rest))
    return out


def generation_chunks(
    g: Generation, spec: VersionSpec, offset_ns: int = 0
) -> Iterator[list[RawEvent]]:
    """The generation's events from every M, merged by time, in sorted chunks."""
    f = g.ns_per_tick
    nargs, version = spec.nargs, spec.version
    # Per M: [remaining batches iterator, decoded events, read position]
    cursors: list[list] = []
    for batches in g.batches.values():
        it = iter(batches)
        cur = [it, [], 0]
        if _refill(cur, nargs, version, f, offset_ns, -(1 << 62)):
            cursors.append(cur)
    while cursors:
        if len(cursors) == 1:
            cur = cursors[0]
            while True:
                evs, pos = cur[1], cur[2]
                yield evs[pos:] if pos else evs
                if not _refill(cur, nargs, version, f, offset_ns, evs[-1][0]):
                    return
        horizon = min(cur[1][-1][0] for cur in cursors)
        chunk: list[RawEvent] = []
        live = []
        for cur in cursors:
            evs, pos = cur[1], cur[2]
            j = bisect_right(evs, horizon, lo=pos, key=_TIME)
            if j > pos:
                chunk.extend(evs[pos:j])
            if j < len(evs):
                cur[2] = j
                live.append(cur)
            elif _refill(cur, nargs, version, f, offset_ns, evs[-1][0]):
                live.append(cur)
        cursors = live
        # Stable sort on time alone (int keys: CPython's fast path); ties keep M order.
        chunk.sort(key=_TIME)
        yield chunk


def _refill(
    cur: list, nargs: list[int], version: int, f: float, offset_ns: int, floor: int
) -> bool:
    """Decode the M's next non-empty batch into the cursor; False when it has none."""
    for b in cur[0]:
        evs = decode_batch(b, nargs, version, f, offset_ns, floor)
        if evs:
            cur[1] = evs
            cur[2] = 0
            return True
    return False


def generation_events(g: Generation, spec: VersionSpec, offset_ns: int = 0) -> Iterator[RawEvent]:
    """The generation's events one by one (for dumps; the reader consumes chunks)."""
    for chunk in generation_chunks(g, spec, offset_ns):
        yield from chunk
