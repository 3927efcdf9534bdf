"""The public entry point: stream a trace, generation by generation, into records.

Memory is bounded by one generation (the runtime cuts one about every second, and its
batches are ≤ 64 KiB each) plus the open intervals, whatever the size of the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from typing import BinaryIO, Literal

from .events import DecodeState, RawEvent, generation_chunks, generation_events
from .gcbatch import fewer_young_collections
from .generation import Generation, read_generations
from .interpret import Interpreter
from .records import Record
from .spec import VersionSpec, spec_name
from .wire import BatchReader

ClockMode = Literal["auto", "trace"]


class TraceReader:
    """Reads one Go execution trace from a binary stream.

    Clock: with `clock="auto"` (the default) times are wall clock ns whenever they can be:
    from each generation's ClockSnapshot (Go 1.25+), or else from `wall_offset_ns` if the
    caller knows it (wall minus trace clock), or else from `start_wall_ns`, the wall time
    at which the caller knows the trace started (e.g. when it sent the /debug/pprof/trace
    request; accurate to that request's latency), anchored on the first batch. Otherwise
    (Go 1.22 to 1.24 traces with no anchor given) times stay
    in Go's trace clock (`clock` reports "trace"). `clock="trace"` always keeps the trace
    clock, which is what `go tool trace -d=parsed` prints (used by the cross-checks).

    The header is read (and the version checked) on construction.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        clock: ClockMode = "auto",
        wall_offset_ns: int | None = None,
        start_wall_ns: int | None = None,
    ) -> None:
        self._batches = BatchReader(stream)
        self.version = self._batches.version
        self.spec = VersionSpec(self.version)
        self._mode = clock
        self._fallback_offset = wall_offset_ns
        self._start_wall = start_wall_ns
        self.clock: Literal["wall", "trace"] = "trace"
        self.generations = 0
        self.bytes_read = 0
        self.interpreter = Interpreter()
        self.decoder = DecodeState(self.spec)

    @property
    def events(self) -> int:
        """Timed events decoded so far."""
        return sum(self.decoder.counts)

    def event_counts(self) -> dict[str, int]:
        """Timed events decoded so far, by Go's event name."""
        return {spec_name(t): n for t, n in enumerate(self.decoder.counts) if n}

    def _offset(self, g: Generation) -> int:
        if self._mode == "trace":
            return 0
        snap = g.wall_offset_ns()
        if snap is not None:
            self.clock = "wall"
            return snap
        if self._fallback_offset is None and self._start_wall is not None:
            # Anchor the first generation's earliest batch on the caller's start time (the
            # trace was started then, e.g. when /debug/pprof/trace got the request).
            first = min((b.time for bs in g.batches.values() for b in bs), default=0)
            self._fallback_offset = self._start_wall - int(first * g.ns_per_tick)
        if self._fallback_offset is not None:
            self.clock = "wall"
            return self._fallback_offset
        return 0

    def iter_generations(self) -> Iterator[Generation]:
        for g in read_generations(self._batches):
            self.generations += 1
            self.bytes_read = self._batches.offset
            yield g

    def raw_events(self) -> Iterator[tuple[Generation, RawEvent]]:
        """Every timed event, merged across Ms (for dumps and cross-checks); see events.py
        for the tuple. Use either this or `records()` on one reader, not both."""
        self.decoder.keep_all = True
        with fewer_young_collections():
            for g in self.iter_generations():
                for ev in generation_events(g, self.decoder, self._offset(g)):
                    yield g, ev

    def records(self) -> Iterator[Record]:
        """The high-level records, streamed as intervals complete."""
        interp = self.interpreter
        dec = self.decoder
        out = interp.out
        run = interp.run
        with fewer_young_collections():
            for g in self.iter_generations():
                interp.begin_generation(g)
                for chunk in generation_chunks(g, dec, self._offset(g)):
                    if interp.first_ns is None:  # the first event decoded, handed on or not
                        interp.first_ns = dec.first_ns
                    run(chunk)
                    if out:
                        yield from out
                        out.clear()
            interp.finish(dec.last_ns)
        yield from out
        out.clear()


def parse_trace(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    clock: ClockMode = "auto",
    wall_offset_ns: int | None = None,
    start_wall_ns: int | None = None,
) -> Iterator[Record]:
    """Stream the records of a trace file (path) or binary stream.

    Raises TraceParseError (UnsupportedTraceVersion for ≤ go1.21 or unknown versions);
    records of every complete generation before a damaged one are yielded first.
    """
    with ExitStack() as stack:
        if isinstance(source, (str, os.PathLike)):
            stream: BinaryIO = stack.enter_context(open(source, "rb"))
        else:
            stream = source
        reader = TraceReader(
            stream, clock=clock, wall_offset_ns=wall_offset_ns, start_wall_ns=start_wall_ns
        )
        yield from reader.records()
