"""Decoding a generation's event batches into one time-ordered stream.

Each M (OS thread) writes its own batches, in order; the whole program's order is the
merge of the per-M streams by timestamp. Go's reader additionally checks each event
against the scheduler state machine and, when the clock disagrees with causality (a
GoUnblock stamped a few ns before the GoBlock it answers, on another CPU), picks the event
that can legally come next. This decoder merges by timestamp only (keeping every M's own
order intact) and leaves the tolerance of those rare inversions to the interpreter.

An event is a tuple `(time_ns, m, type, args)`: `args` excludes the timestamp delta;
time is trace-clock ns computed exactly as Go does (float64 ns-per-tick times the batch
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
from .spec import VersionSpec
from .wire import Batch

RawEvent = tuple[int, int, int, tuple[int, ...]]

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

    Unrolled by argument count (timed events have 1 to 5 varints, dt included): this loop
    is where the parser spends most of its time, and every avoided list or call counts.
    """
    data = b.data
    m = b.m
    end = len(data)
    pos = 0
    last = int(b.time * f) + offset_ns
    out: list[RawEvent] = []
    append = out.append
    slow = _uvarint_slow
    boff = b.offset
    # ns per tick is a whole number on the common platforms (64 on amd64 Linux, 1 where
    # the clock is nanotime): then an int product equals Go's float64 one for any delta
    # below 2**53 ticks, and is cheaper.
    fi = int(f) if f.is_integer() else 0
    try:
        while pos < end:
            typ = data[pos]
            k = nargs[typ]
            if not k:
                raise TraceParseError(
                    f"event type {typ} is not a timed event of go 1.{version}", offset=boff
                )
            v = data[pos + 1]
            pos += 2
            if v >= 0x80:
                v, pos = slow(data, pos - 1, boff)
            last += v * fi if fi else int(v * f)
            if k == 1:
                append((last, m, typ, ()))
                continue
            a1 = data[pos]
            pos += 1
            if a1 >= 0x80:
                a1, pos = slow(data, pos - 1, boff)
            if k == 2:
                append((last, m, typ, (a1,)))
                continue
            a2 = data[pos]
            pos += 1
            if a2 >= 0x80:
                a2, pos = slow(data, pos - 1, boff)
            if k == 3:
                append((last, m, typ, (a1, a2)))
                continue
            a3 = data[pos]
            pos += 1
            if a3 >= 0x80:
                a3, pos = slow(data, pos - 1, boff)
            if k == 4:
                append((last, m, typ, (a1, a2, a3)))
                continue
            a4 = data[pos]
            pos += 1
            if a4 >= 0x80:
                a4, pos = slow(data, pos - 1, boff)
            append((last, m, typ, (a1, a2, a3, a4)))
    except IndexError:
        raise TraceParseError(
            f"truncated event in batch of M {m} (generation {b.gen})", offset=boff
        ) from None
    if pos != end:
        raise TraceParseError(f"event overruns batch of M {m}", offset=boff)
    if out and out[0][0] < floor_ns:
        # This M's clock went backwards between two of its batches (it moved to a CPU
        # whose clock lags): keep the M's own order, as Go does, by clamping.
        out = [(max(t, floor_ns), m_, ty, a) for t, m_, ty, a in out]
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
