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
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from .errors import TraceParseError
from .generation import Generation
from .spec import VersionSpec
from .wire import Batch

RawEvent = tuple[int, int, int, tuple[int, ...]]


def _decode_m(
    batches: list[Batch], spec: VersionSpec, f: float, offset_ns: int, m: int
) -> Iterator[RawEvent]:
    """All events of one M's batches, in order."""
    nargs = spec.nargs
    for b in batches:
        data = b.data
        end = len(data)
        pos = 0
        last = int(b.time * f) + offset_ns
        try:
            while pos < end:
                typ = data[pos]
                k = nargs[typ]
                if not k:
                    raise TraceParseError(
                        f"event type {typ} is not a timed event of go 1.{spec.version}",
                        offset=b.offset,
                    )
                pos += 1
                # Inline uleb128: nearly every byte is < 0x80, so the common case is one
                # index and one compare per argument.
                args = []
                for _ in range(k):
                    v = data[pos]
                    pos += 1
                    if v >= 0x80:
                        v &= 0x7F
                        shift = 7
                        while True:
                            c = data[pos]
                            pos += 1
                            v |= (c & 0x7F) << shift
                            if c < 0x80:
                                break
                            shift += 7
                            if shift > 63:
                                raise TraceParseError(
                                    "varint longer than 10 bytes", offset=b.offset
                                )
                    args.append(v)
                last += int(args[0] * f)
                yield (last, m, typ, tuple(args[1:]))
        except IndexError:
            raise TraceParseError(
                f"truncated event in batch of M {m} (generation {b.gen})", offset=b.offset
            ) from None


def generation_events(g: Generation, spec: VersionSpec, offset_ns: int = 0) -> Iterator[RawEvent]:
    """The generation's events from every M, merged by time (stable per M)."""
    f = g.ns_per_tick
    streams = [_decode_m(bs, spec, f, offset_ns, m) for m, bs in g.batches.items()]
    if len(streams) == 1:
        return streams[0]
    # Tuples compare on time, then on M id (distinct across streams), so the tie-break
    # never reaches the argument tuples; heapq.merge never reorders within one stream.
    return heapq.merge(*streams)
