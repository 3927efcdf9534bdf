"""Generations: the self-contained units a Go 1.22+ trace is cut into.

The runtime restarts its string and stack tables, re-states every goroutine and P, and
writes a fresh frequency (and, 1.25+, a wall-clock snapshot) at every generation, so a
generation can be decoded knowing nothing but itself — and the reader only ever holds one
(roughly a second of trace, or less when the runtime flushes early) in memory.

Generation boundaries: Go 1.26+ writes an EndOfGeneration byte; older versions are cut
when the batch header's generation number moves on (the first batch of the next generation
is "spilled" over, as Go's own reader does).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .errors import TraceParseError
from .spec import Ev
from .wire import (
    MAX_FRAMES_PER_STACK,
    MAX_STRING_SIZE,
    Batch,
    BatchReader,
    uvarint,
)


@dataclass(slots=True)
class Frame:
    """One stack frame, names resolved through the generation's string table."""

    pc: int
    func: str
    file: str
    line: int


@dataclass(slots=True)
class Generation:
    """Everything one generation holds, event batches still undecoded."""

    gen: int
    version: int
    strings: dict[int, str] = field(default_factory=lambda: {0: ""})
    #: stack id → tuple of PCs; PCs resolve through `pcs`
    stacks: dict[int, tuple[int, ...]] = field(default_factory=dict)
    pcs: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # pc → (func, file, line)
    freq: int = 0  # trace clock ticks per second
    #: (trace ticks, wall clock ns) of the ClockSnapshot event (Go 1.25+), else None
    clock_snapshot: tuple[int, int] | None = None
    #: event batches per M, in stream order (an M's batches are in time order)
    batches: dict[int, list[Batch]] = field(default_factory=dict)
    cpu_samples: int = 0
    experimental_batches: int = 0
    size_bytes: int = 0

    @property
    def ns_per_tick(self) -> float:
        """Nanoseconds per trace tick, as Go computes it (float64, `1/(freq/1e9)`)."""
        return 1.0 / (self.freq / 1e9)

    def wall_offset_ns(self) -> int | None:
        """wall clock ns minus trace clock ns, from this generation's ClockSnapshot (if any)."""
        if self.clock_snapshot is None:
            return None
        ticks, wall = self.clock_snapshot
        return wall - int(ticks * self.ns_per_tick)

    def string(self, sid: int) -> str:
        """A string by id; unknown ids read as "" rather than failing a whole generation."""
        return self.strings.get(sid, "")

    def stack(self, stack_id: int) -> list[Frame]:
        """The frames of a stack id (innermost first); [] for 0 or unknown ids."""
        out = []
        for pc in self.stacks.get(stack_id, ()):
            f, fl, line = self.pcs.get(pc, (0, 0, 0))
            out.append(Frame(pc, self.string(f), self.string(fl), line))
        return out

    # -- building -----------------------------------------------------------------------

    def add(self, b: Batch) -> None:
        self.size_bytes += len(b.data)
        if b.exp:
            self.experimental_batches += 1  # allocation experiments: not needed here
            return
        kind = b.kind
        try:
            if kind == Ev.STRINGS:
                self._add_strings(b.data)
            elif kind == Ev.STACKS:
                self._add_stacks(b.data)
            elif kind == Ev.CPU_SAMPLES:
                self._add_cpu_samples(b.data)
            elif (kind == Ev.FREQUENCY and self.version < 25) or (
                kind == Ev.SYNC and self.version >= 25
            ):
                self._add_sync(b)
            else:
                # Batches of NO_THREAD exist too (goroutine statuses written for no M).
                self.batches.setdefault(b.m, []).append(b)
        except TraceParseError as e:
            if e.offset is None:
                raise TraceParseError(f"generation {self.gen}: {e}", offset=b.offset) from None
            raise

    def _add_strings(self, data: bytes) -> None:
        pos, end = 1, len(data)
        while pos < end:
            if data[pos] != Ev.STRING:
                raise TraceParseError(f"expected a String event, got type {data[pos]}")
            sid, pos = uvarint(data, pos + 1)
            n, pos = uvarint(data, pos)
            if n > MAX_STRING_SIZE:
                raise TraceParseError(f"string of {n} bytes, maximum is {MAX_STRING_SIZE}")
            if pos + n > end:
                raise TraceParseError("truncated string")
            if sid in self.strings and sid != 0:
                raise TraceParseError(f"duplicate string id {sid}")
            self.strings[sid] = data[pos : pos + n].decode("utf-8", "replace")
            pos += n

    def _add_stacks(self, data: bytes) -> None:
        pos, end = 1, len(data)
        pcs = self.pcs
        while pos < end:
            if data[pos] != Ev.STACK:
                raise TraceParseError(f"expected a Stack event, got type {data[pos]}")
            sid, pos = uvarint(data, pos + 1)
            nframes, pos = uvarint(data, pos)
            if nframes > MAX_FRAMES_PER_STACK:
                raise TraceParseError(f"stack of {nframes} frames, max {MAX_FRAMES_PER_STACK}")
            frames = []
            for _ in range(nframes):
                pc, pos = uvarint(data, pos)
                func, pos = uvarint(data, pos)
                file, pos = uvarint(data, pos)
                line, pos = uvarint(data, pos)
                frames.append(pc)
                if pc not in pcs:
                    pcs[pc] = (func, file, line)
            if sid in self.stacks:
                raise TraceParseError(f"duplicate stack id {sid}")
            self.stacks[sid] = tuple(frames)

    def _add_cpu_samples(self, data: bytes) -> None:
        pos, end = 1, len(data)
        while pos < end:
            if data[pos] != Ev.CPU_SAMPLE:
                raise TraceParseError(f"expected a CPUSample event, got type {data[pos]}")
            pos += 1
            for _ in range(5):  # time, m, p, g, stack
                _, pos = uvarint(data, pos)
            self.cpu_samples += 1

    def _add_sync(self, b: Batch) -> None:
        data = b.data
        pos, end = (1 if self.version >= 25 else 0), len(data)
        last_ts = b.time
        while pos < end:
            typ = data[pos]
            pos += 1
            if typ == Ev.FREQUENCY:
                if self.freq:
                    raise TraceParseError("found multiple frequency events")
                self.freq, pos = uvarint(data, pos)
                if self.freq == 0:
                    raise TraceParseError("frequency of 0 ticks per second")
            elif typ == Ev.CLOCK_SNAPSHOT and self.version >= 25:
                if self.clock_snapshot is not None:
                    raise TraceParseError("found multiple clock snapshot events")
                dt, pos = uvarint(data, pos)
                _mono, pos = uvarint(data, pos)
                sec, pos = uvarint(data, pos)
                nsec, pos = uvarint(data, pos)
                last_ts += dt
                self.clock_snapshot = (last_ts, sec * 1_000_000_000 + nsec)
            else:
                raise TraceParseError(f"expected frequency or clock snapshot event, got {typ}")

    def check(self) -> None:
        if not self.freq:
            raise TraceParseError(f"generation {self.gen}: no frequency event found")
        if self.version >= 25 and self.clock_snapshot is None:
            raise TraceParseError(f"generation {self.gen}: no clock snapshot event found")


def read_generations(reader: BatchReader) -> Iterator[Generation]:
    """Yield the trace's generations one at a time, each complete and checked.

    A truncated or corrupt stream raises TraceParseError *after* every complete generation
    before the damage has been yielded, so a caller keeps everything that was readable.
    """
    version = reader.version
    spill: Batch | None = None
    while True:
        g: Generation | None = None
        if spill is not None:
            g = Generation(gen=spill.gen, version=version)
            g.add(spill)
            spill = None
        ended = False
        while True:
            b = reader.next_batch()
            if b is None:
                break
            if b.end_of_generation:
                if g is None:
                    raise TraceParseError(
                        "end-of-generation marker without a generation", offset=b.offset
                    )
                ended = True
                break
            if g is None:
                g = Generation(gen=b.gen, version=version)
            if b.gen != g.gen:
                if version < 26 and b.gen == g.gen + 1:
                    spill = b
                    break
                raise TraceParseError(
                    f"generations out of order or interleaved: batch of generation {b.gen} "
                    f"inside generation {g.gen}",
                    offset=b.offset,
                )
            g.add(b)
        if g is None:
            return
        if version >= 26 and not ended:
            raise TraceParseError(
                f"incomplete generation {g.gen} (no end-of-generation marker): "
                "trace likely truncated",
                offset=reader.offset,
            )
        g.check()
        yield g
        if spill is None and not ended:
            return
