"""Decoding a generation's event batches into one time-ordered stream.

Each M (OS thread) writes its own batches, in order; the whole program's order is the
merge of the per-M streams by timestamp. Go's reader additionally checks each event
against the scheduler state machine and, when the clock disagrees with causality (a
GoUnblock stamped a few ns before the GoBlock it answers, on another CPU), picks the event
that can legally come next. This decoder merges by timestamp only (keeping every M's own
order intact) and leaves the tolerance of those rare inversions to the interpreter.

What is per M is resolved here, while decoding each M's batches in order: which
goroutine the M is running (GoStart / GoStatus Running / GoCreateSyscall / GoSwitch set
it; GoStop / GoBlock / GoDestroy / GoSyscallEndBlocked clear it — the rules of Go's
`internal/trace/order.go`). So an event carries the goroutine it belongs to, not its M,
and events whose only effect is on that per-M state (GoStart, GoStop, ProcStart,
HeapAlloc, …) are counted but not handed on at all (unless `keep_all`, for dumps). A
GoStart ends no park: the GoUnblock before it does (a park's end is when the goroutine
became runnable), even when a skewed clock stamps the unblock after the start.

An event is a tuple `(time_ns, type, g, x)`: `g` is the goroutine running on the event's
M when it happened (0: none; before the event's own effect on it), except for GoStart /
GoUnblock, where it is the goroutine started / unblocked; `x` is the block reason's
string id for GoBlock, the unblocking goroutine for GoUnblock, 0 for GoStart, (0, 0, 0)
for GoSyscallBegin/End and GoStop (nobody reads their arguments), and the first three
arguments after the timestamp delta `(a1, a2, a3)` for every other type (0 where the
event has fewer; a later argument, always a stack id, is skipped, and so are multi-byte
arguments the interpreter never reads — see `_WANT`). Time is trace-clock ns computed exactly as Go
does (float64 ns-per-tick times the batch base, plus each delta converted separately),
plus `offset_ns` (0 for trace clock, the generation's wall-clock offset for wall time).

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
from typing import Any

from .errors import TraceParseError
from .generation import Generation
from .spec import Ev, VersionSpec
from .wire import NO_THREAD, Batch

RawEvent = tuple[int, int, int, Any]

_GO_START, _GO_BLOCK, _GO_UNBLOCK = int(Ev.GO_START), int(Ev.GO_BLOCK), int(Ev.GO_UNBLOCK)
# literals in decode_batch
assert (_GO_START, _GO_BLOCK, _GO_UNBLOCK) == (16, 20, 21)
assert (Ev.GO_STOP, Ev.GO_SYSCALL_BEGIN, Ev.GO_SYSCALL_END) == (19, 22, 23)
_RUNNING, _SYSCALL = 2, 3  # tracev2.GoStatus

# How many of an event's first three arguments (after dt) the interpreter reads: a
# multi-byte argument past that count is skipped, not decoded (sequence numbers and stack
# ids make up most of the long varints of a trace). Default: all three.
_WANT = [3] * 256
for _t in (
    Ev.GO_CREATE,
    Ev.GO_CREATE_BLOCKED,
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

# Types whose only effect is on the per-M running goroutine (resolved while decoding) or
# on nothing the records need: counted, not handed on.
_PER_M_ONLY = [False] * 256
for _t in (
    Ev.PROCS_CHANGE,
    Ev.PROC_START,
    Ev.PROC_STOP,
    Ev.PROC_STEAL,
    Ev.PROC_STATUS,
    Ev.GO_CREATE_SYSCALL,
    Ev.GO_STOP,
    Ev.GC_SWEEP_ACTIVE,
    Ev.GC_SWEEP_BEGIN,
    Ev.GC_SWEEP_END,
    Ev.HEAP_ALLOC,
    Ev.HEAP_GOAL,
    Ev.GO_LABEL,
):
    _PER_M_ONLY[_t] = True

_TIME = itemgetter(0)


class DecodeState:
    """What decoding carries across batches and generations: the goroutine each M runs,
    event counts by type, and the time range seen."""

    __slots__ = ("counts", "first_ns", "keep_all", "last_ns", "m_g", "nargs", "version")

    def __init__(self, spec: VersionSpec, keep_all: bool = False) -> None:
        self.nargs = spec.nargs
        self.version = spec.version
        self.keep_all = keep_all
        self.counts = [0] * 256  # timed events decoded, by wire type
        self.m_g: dict[int, int] = {}  # M → goroutine running on it (0: none)
        self.first_ns: int | None = None
        self.last_ns = 0


def _uvarint_slow(data: list[int], pos: int, offset: int) -> tuple[int, int]:
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
    b: Batch, st: DecodeState, f: float, offset_ns: int, floor_ns: int
) -> list[RawEvent]:
    """All events of one batch, in order. `floor_ns`: last time of the M's previous batch.

    The parser's hottest loop. It indexes a list of the batch's bytes (CPython
    specialises list indexing, not bytes indexing), inlines one- and two-byte varints,
    handles the events that make up most of any trace (GoStart, GoBlock, GoUnblock; then
    GoSyscallBegin/End, GoStop) in their own branches, builds one small tuple per event
    handed on, and skips rather than decodes the varints nobody reads (sequence numbers,
    stacks; every argument of GoSyscallBegin/End and GoStop, handed on as (0, 0, 0)).
    """
    raw = b.data
    end = len(raw)
    data = list(raw)
    data.append(0)  # a sentinel: a varint cut by the batch's end stops there
    m = b.m
    nothread = m == NO_THREAD
    m_g = st.m_g
    cur = 0 if nothread else m_g.get(m, 0)
    nargs = st.nargs
    counts = st.counts
    keep_all = st.keep_all
    per_m_only = _PER_M_ONLY
    want = _WANT
    pos = 0
    boff = b.offset
    # ns per tick is a whole number on the common platforms (64 on amd64 Linux, 1 where
    # the clock is nanotime): then an int product equals Go's float64 one for any delta
    # below 2**53 ticks. Otherwise decode ticks and convert afterwards, delta by delta.
    fi = int(f) if f.is_integer() else 1
    ticks = fi == 1 and f != 1.0
    last = b.time if ticks else int(b.time * f) + offset_ns
    out: list[RawEvent] = []
    append = out.append
    slow = _uvarint_slow
    if end > 1:  # the first event's time, handed on or not (the trace's start)
        v = data[1] if data[1] < 0x80 else slow(data, 1, boff)[0]
        first = int((b.time + v) * f) + offset_ns if ticks else last + v * fi
        if st.first_ns is None or first < st.first_ns:
            st.first_ns = first
    n_start = n_block = n_unblock = 0
    try:
        while pos < end:
            typ = data[pos]
            v = data[pos + 1]
            pos += 2
            if v >= 0x80:
                c = data[pos]
                if c < 0x80:  # two bytes: inline
                    v = (v & 0x7F) | (c << 7)
                    pos += 1
                else:
                    v, pos = slow(data, pos - 1, boff)
            last += v * fi
            if typ == 16:  # GoStart: dt g g_seq
                g = data[pos]
                pos += 1
                if g >= 0x80:
                    c = data[pos]
                    if c < 0x80:  # two bytes: inline
                        g = (g & 0x7F) | (c << 7)
                        pos += 1
                    else:
                        g, pos = slow(data, pos - 1, boff)
                while data[pos] >= 0x80:
                    pos += 1
                pos += 1
                n_start += 1
                cur = g
                if keep_all:
                    append((last, 16, g, 0))
            elif typ == 20:  # GoBlock: dt reason stack
                r = data[pos]
                pos += 1
                if r >= 0x80:
                    c = data[pos]
                    if c < 0x80:  # two bytes: inline
                        r = (r & 0x7F) | (c << 7)
                        pos += 1
                    else:
                        r, pos = slow(data, pos - 1, boff)
                while data[pos] >= 0x80:
                    pos += 1
                pos += 1
                n_block += 1
                append((last, 20, cur, r))
                cur = 0
            elif typ == 21:  # GoUnblock: dt g g_seq stack
                g = data[pos]
                pos += 1
                if g >= 0x80:
                    c = data[pos]
                    if c < 0x80:  # two bytes: inline
                        g = (g & 0x7F) | (c << 7)
                        pos += 1
                    else:
                        g, pos = slow(data, pos - 1, boff)
                while data[pos] >= 0x80:
                    pos += 1
                pos += 1
                while data[pos] >= 0x80:
                    pos += 1
                pos += 1
                n_unblock += 1
                append((last, 21, g, cur))
            elif typ == 22 or typ == 23 or typ == 19:
                # GoSyscallBegin (dt p_seq stack), GoSyscallEnd (dt), GoStop (dt reason
                # stack): frequent in services; none needs its arguments here.
                if typ != 23:
                    while data[pos] >= 0x80:
                        pos += 1
                    while data[pos + 1] >= 0x80:
                        pos += 1
                    pos += 2
                counts[typ] += 1
                if typ == 19:
                    if keep_all:
                        append((last, 19, cur, (0, 0, 0)))
                    cur = 0
                else:
                    append((last, typ, cur, (0, 0, 0)))
            else:
                k = nargs[typ]
                if not k:
                    raise TraceParseError(
                        f"event type {typ} is not a timed event of go 1.{st.version}",
                        offset=boff,
                    )
                counts[typ] += 1
                a1 = a2 = a3 = 0
                if k > 1:
                    a1 = data[pos]
                    pos += 1
                    if a1 >= 0x80:
                        a1, pos = slow(data, pos - 1, boff)
                    if k > 2:
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
                        if k > 3:
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
                            if k > 4:  # the fourth argument is always a stack id
                                while data[pos] >= 0x80:
                                    pos += 1
                                pos += 1
                if per_m_only[typ]:
                    if keep_all:
                        append((last, typ, cur, (a1, a2, a3)))
                    if typ == Ev.GO_STOP:
                        cur = 0
                    elif typ == Ev.GO_CREATE_SYSCALL:
                        cur = a1  # a cgo callback's goroutine, bound to this thread
                    continue
                # g: the goroutine on this M before the event's own effect on it
                append((last, typ, cur, (a1, a2, a3)))
                if typ == Ev.GO_STATUS or typ == Ev.GO_STATUS_STACK:
                    if a3 == _RUNNING:
                        cur = a1
                    elif a3 == _SYSCALL:  # a goroutine in a syscall on thread a2
                        if a2 == m:
                            cur = a1
                        else:
                            m_g[a2] = a1
                elif typ == Ev.GO_SWITCH or typ == Ev.GO_SWITCH_DESTROY:
                    cur = a1
                elif (
                    typ == Ev.GO_DESTROY
                    or typ == Ev.GO_DESTROY_SYSCALL
                    or typ == Ev.GO_SYSCALL_END_BLOCKED  # runnable again, but needs a P
                ):
                    cur = 0
                if nothread:  # no M keeps a goroutine running there
                    cur = 0
    except IndexError:
        raise TraceParseError(
            f"truncated event in batch of M {m} (generation {b.gen})", offset=boff
        ) from None
    if pos != end:  # the last event read into the sentinel
        raise TraceParseError(
            f"truncated event in batch of M {m} (generation {b.gen})", offset=boff
        )
    counts[_GO_START] += n_start
    counts[_GO_BLOCK] += n_block
    counts[_GO_UNBLOCK] += n_unblock
    if not nothread:
        m_g[m] = cur
    if ticks:
        out = _ticks_to_ns(out, b.time, f, offset_ns)
        last = int(last * f) + offset_ns
    if out and out[0][0] < floor_ns:
        # This M's clock went backwards between two of its batches (it moved to a CPU
        # whose clock lags): keep the M's own order, as Go does, by clamping.
        out = [(max(t, floor_ns), *rest) for t, *rest in out]
    if last > st.last_ns:  # the last event's time, handed on or not (the trace's end)
        st.last_ns = last
    return out


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
    g: Generation, st: DecodeState, offset_ns: int = 0
) -> Iterator[list[RawEvent]]:
    """The generation's events from every M, merged by time, in sorted chunks."""
    f = g.ns_per_tick
    # Per M: [remaining batches iterator, decoded events, read position]
    cursors: list[list] = []
    # Batches of no M (the goroutine statuses the runtime writes when a generation
    # begins) first: a status can name the thread a goroutine sits in a syscall on.
    order = sorted(g.batches, key=lambda m: m != NO_THREAD)
    for m in order:
        batches = g.batches[m]
        if m == NO_THREAD:
            evs: list[RawEvent] = []
            floor = -(1 << 62)
            for b in batches:
                part = decode_batch(b, st, f, offset_ns, floor)
                if part:
                    evs.extend(part)
                    floor = part[-1][0]
            if evs:
                cursors.append([iter(()), evs, 0])
            continue
        cur = [iter(batches), [], 0]
        if _refill(cur, st, f, offset_ns, -(1 << 62)):
            cursors.append(cur)
    while cursors:
        if len(cursors) == 1:
            cur = cursors[0]
            while True:
                evs, pos = cur[1], cur[2]
                yield evs[pos:] if pos else evs
                if not _refill(cur, st, f, offset_ns, evs[-1][0]):
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
            elif _refill(cur, st, f, offset_ns, evs[-1][0]):
                live.append(cur)
        cursors = live
        # Stable sort on time alone (int keys: CPython's fast path); ties keep M order.
        chunk.sort(key=_TIME)
        yield chunk


def _refill(cur: list, st: DecodeState, f: float, offset_ns: int, floor: int) -> bool:
    """Decode the M's next batch with events to hand on into the cursor; False when it
    has none left."""
    for b in cur[0]:
        evs = decode_batch(b, st, f, offset_ns, floor)
        if evs:
            cur[1] = evs
            cur[2] = 0
            return True
    return False


def generation_events(g: Generation, st: DecodeState, offset_ns: int = 0) -> Iterator[RawEvent]:
    """The generation's events one by one (for dumps; the reader consumes chunks)."""
    for chunk in generation_chunks(g, st, offset_ns):
        yield from chunk
