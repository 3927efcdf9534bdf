"""Per-process timelines of goblock events, indexed by goroutine and by thread.

Scheduler events (off-CPU, run queue) are kept by thread even when they carry a goid: the
kernel side can only tag them with the goid cached at the thread's last syscall entry,
which is stale once another goroutine runs there. The join attributes them through the
thread the goroutine is known to have run on (breakdown._thread_events).

Storage is compact on purpose (100k events/s held for up to `retention` is millions of
records): a record is `(start_ns, end_ns, code, detail, tid, src)`, but it is stored
columnar per goroutine (events that know their goid) or per thread (kernel events with
goid 0) — starts in one int64 array (bisect runs on it), end and a packed
code/src/tid in another, the detail (interned: the same syscall targets and wait reasons
recur) in a list — about 40 bytes a record instead of ~250 as Python tuples of Python
ints. Queries return tuples for the records they find. A key's records are sorted
lazily, only when an out-of-order append happened and a query needs them.
Bounds: events older than `retention` are expired; above `max_events` the oldest are
dropped (the caller counts both). Span markers are kept once per (trace id, span id):
the SDK's End can fire the uprobe twice for one span.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Iterator
from itertools import accumulate
from operator import itemgetter
from typing import Any

from otel_goblock.processors.goblock.categories import (
    GC_ASSIST,
    GC_STW,
    GRPC_FC,
    OFFCPU,
    PARK,
    PARK_CAUSE,
    RUNQUEUE,
    SYSCALL,
    endpoint,
)

from otel_goblock.pdata import Event

Rec = tuple[int, int, int, Any, int, int]  # start, end, code, detail, tid, src

SOURCES = {"ebpf": 0, "gotrace": 1}
# list kinds (also the `unsorted` tags): per goroutine, per thread, stop-the-world,
# lineage children, TCP connections
_GOID, _TID, _STW, _KIDS, _TCP = 0, 1, 2, 3, 4
# kinds of goroutine intervals that are waits of their own when no span claims them
# (plus parks with a known cause); kept at ingest as candidates for `unjoined`
_CANDIDATE_CODES = frozenset({SYSCALL, GC_ASSIST, GRPC_FC})
OTHER_SOURCE = 2
_START = itemgetter(0)
_END = itemgetter(1)


class WaitReason(str):
    """A park's wait reason that also knows the fd it waited on (a netpoll park whose
    receiver resolved the pollDesc's fd): equal to, and hashed as, the plain reason."""

    target: str
    op: str  # the syscall the wait is for, as far as known: "read" / "write"

    def __new__(cls, reason: str, target: str, op: str = "read") -> WaitReason:
        obj = super().__new__(cls, reason)
        obj.target = target
        obj.op = op
        return obj


# records whose times or thread do not fit the packed int64 columns are not stored
_I64 = 1 << 63
_MAX_TID = 1 << 54
# interned details and wait reasons: recurring values; see breakdown._MEMO_MAX
_INTERN_MAX = 8192
_pack_q = struct.Struct("<q").pack
_unpack_q = struct.Struct("<q").unpack_from


# one record in a Recs: start, end, code | src << 4 | tid << 8 (int64 each)
_REC = struct.Struct("<qqq")
_REC_SIZE = _REC.size
_pack_rec = _REC.pack
_unpack_rec = _REC.unpack_from
_iter_rec = _REC.iter_unpack
_CLAIM = struct.Struct("<QQ")  # span times: fixed64
_ORDER = struct.Struct("<QQq")  # end, start, goroutine
_MARK = struct.Struct("<qqq")  # a span marker: goid, tid, time


class Windows:
    """The union of the intervals added, as sorted disjoint windows: two intervals merge
    only when they overlap (a < d and c < b, as the claim test reads it), so "does [s, e]
    overlap one of the intervals" is one bisect and gives the same answer as testing each
    interval. A keep-alive connection's goroutine serves requests one after another and
    gathers one claim per span: a linear test over them was the unjoined pass's hot spot."""

    __slots__ = ("ends", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, start: int, end: int) -> None:
        us, ue = self.starts, self.ends
        i = bisect_right(ue, start)  # the first window that ends after `start`
        j = bisect_left(us, end, i)  # ... up to the first that starts at or after `end`
        if i == j:
            us.insert(i, start)
            ue.insert(i, end)
        else:
            s0, e0 = us[i], ue[j - 1]
            us[i:j] = [start if start < s0 else s0]
            ue[i:j] = [end if end > e0 else e0]

    def overlaps(self, start: int, end: int) -> bool:
        ue = self.ends
        i = bisect_right(ue, start)
        return i < len(ue) and self.starts[i] < end

    def forget(self, cutoff: int) -> bool:
        """Drop the windows that ended before `cutoff`; whether any remain."""
        k = bisect_left(self.ends, cutoff)
        if k:
            del self.starts[:k]
            del self.ends[:k]
        return bool(self.ends)


class _StartsView:
    """The starts of packed records as a sequence, for bisect without unpacking all."""

    __slots__ = ("data",)

    def __init__(self, data: bytearray) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data) // _REC_SIZE

    def __getitem__(self, i: int) -> int:
        return _unpack_q(self.data, i * _REC_SIZE)[0]


_lget = list.__getitem__
_list_iter = list.__iter__  # a Recs' details (its own __iter__ yields records)


class Recs(list):
    """One key's records (a goroutine's, a thread's, the stop-the-worlds), packed.

    The times and the packed code/src/tid live in a bytearray (24 bytes a record), the
    details are the items of this list itself. Why so: a goroutine's records are then
    one object the cyclic GC tracks (a bytearray is not tracked, a list is; a wrapper
    holding a list would be two), and a young collection's pause grows with what
    survives it — one object per short-lived goroutine, not five. Reads as a sequence
    of `Rec` tuples (iteration, indexing, `==` with a list), built on demand: only the
    few records a query finds become tuples. `len()` is the number of records; `append`
    (the list's) adds a detail, `add_rec` a whole record. A long key (a thread, a
    long-lived goroutine) also keeps its starts in an int64 array, made at its first
    search, for bisect without building views."""

    __slots__ = ("data", "last", "maxends", "nsorted", "ordered", "starts")

    def __init__(self) -> None:  # the list itself starts empty: no list.__init__ needed
        self.data = bytearray()
        self.last = -_I64  # start of the last record appended
        self.ordered = True
        # when not ordered: records 0..nsorted-1 are (the first out-of-order append came
        # after them); sort() re-sorts only from where the later ones reach back to
        self.nsorted = 0
        self.starts: array[int] | None = None
        # with `starts`: the largest end among records 0..i (an upper bound once the front
        # was expired): a search skips the scan back for still-running records when none is
        self.maxends: array[int] | None = None

    def add_rec(self, start: int, end: int, code: int, detail: Any, tid: int, src: int) -> None:
        if start < self.last and self.ordered:
            self.ordered = False
            self.nsorted = len(self)
        self.last = start
        self.data += _pack_rec(start, end, code | src << 4 | tid << 8)
        self.append(detail)
        if self.starts is not None:
            self.starts.append(start)
            me = self.maxends
            me.append(end if not me or end > me[-1] else me[-1])  # type: ignore[union-attr]

    def rec(self, i: int) -> Rec:
        s, e, m = _unpack_rec(self.data, i * _REC_SIZE)
        return (s, e, m & 15, _lget(self, i), m >> 8, (m >> 4) & 3)

    def __iter__(self) -> Iterator[Rec]:  # type: ignore[override]
        rec = self.rec
        return (rec(i) for i in range(len(self)))

    def __getitem__(self, i: Any) -> Any:
        n = len(self)
        if isinstance(i, slice):
            return [self.rec(j) for j in range(*i.indices(n))]
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("record index out of range")
        return self.rec(i)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list | tuple):
            return list(self) == list(other)
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Recs({list(self)!r})"

    def sort(self) -> None:  # type: ignore[override]
        """Order by start (stable), if an append came out of order.

        Only the records from the earliest start appended since the sorted prefix on are
        re-sorted, and `starts`/`maxends` are kept up to that point: a thread's records
        arrive out of order by one delivery at most (one source's batch after another's),
        while the list holds seconds of them, and a thread is queried again after every
        batch. Re-sorting the whole list each time was ~35 % of the pipeline's CPU on the
        demo at 1000 req/s. Same order as a full stable sort: the prefix before the cut
        starts no later than any record after it."""
        if self.ordered:
            return
        data, n, k = self.data, len(self), self.nsorted
        # never empty: the append that broke the order is at k or after
        low = min(_unpack_rec(data, i * _REC_SIZE)[0] for i in range(k, n))
        starts = self.starts
        if starts is not None:
            cut = bisect_right(starts, low, 0, k)
        else:
            cut = bisect_right(_StartsView(data), low, 0, k)
        recs = sorted(
            ((*_unpack_rec(data, i * _REC_SIZE), _lget(self, i)) for i in range(cut, n)),
            key=_START,
        )
        data[cut * _REC_SIZE :] = b"".join(_pack_rec(s, e, m) for s, e, m, _ in recs)
        self[cut:] = [r[3] for r in recs]
        if starts is not None:
            me = self.maxends
            del starts[cut:]
            del me[cut:]  # type: ignore[index]
            starts.extend(r[0] for r in recs)
            top = me[-1] if me else -_I64  # type: ignore[index]
            for r in recs:
                if r[1] > top:
                    top = r[1]
                me.append(top)  # type: ignore[union-attr]
        self.last = recs[-1][0]
        self.ordered = True

    def _bisect(self, lo_t: int, hi_t: int) -> tuple[int, int]:
        """(first index starting at or after lo_t, first index starting after hi_t)."""
        starts = self.starts
        if starts is None:
            if len(self) <= 8:
                rows = list(_REC.iter_unpack(self.data))
                hi = bisect_right(rows, hi_t, key=_START)
                return bisect_left(rows, lo_t, 0, hi, key=_START), hi
            rows = list(_REC.iter_unpack(self.data))
            starts = self.starts = array("q", [s for s, _, _ in rows])
            self.maxends = array("q", accumulate([e for _, e, _ in rows], max))
        hi = bisect_right(starts, hi_t)
        return bisect_left(starts, lo_t, 0, hi), hi

    def overlapping(self, start: int, end: int) -> list[Rec]:
        """Records overlapping [start, end] (sorted first).

        One goroutine's (or thread's) intervals barely overlap each other, so the records
        that began before `start` and still run are among the last few before it: scan
        back until a few records in a row ended before `start`."""
        if not self.ordered:
            self.sort()
        out: list[Rec]
        if len(self) <= 8:
            # most goroutines: unpack the few records once, index them (no views, no
            # second unpack per record found)
            rows = list(_REC.iter_unpack(self.data))
            if rows and rows[0][0] >= start and rows[-1][0] <= end:  # a goroutine of this span
                # all of them, none started before: one comprehension, no scan back
                return [
                    (s, e, m & 15, d, m >> 8, (m >> 4) & 3)
                    for (s, e, m), d in zip(rows, _list_iter(self), strict=True)
                ]
            hi = bisect_right(rows, end, key=_START)
            lo = bisect_left(rows, start, 0, hi, key=_START)
            out = []
            for i in range(lo, hi):
                s, e, m = rows[i]
                out.append((s, e, m & 15, _lget(self, i), m >> 8, (m >> 4) & 3))
            j, misses = lo - 1, 0
            while j >= 0 and misses < 4:
                s, e, m = rows[j]
                if e > start:
                    out.append((s, e, m & 15, _lget(self, j), m >> 8, (m >> 4) & 3))
                else:
                    misses += 1
                j -= 1
            return out
        data = self.data
        lo, hi = self._bisect(start, end)
        out = []
        for i in range(lo, hi):
            s, e, m = _unpack_rec(data, i * _REC_SIZE)
            out.append((s, e, m & 15, _lget(self, i), m >> 8, (m >> 4) & 3))
        # nothing before lo ends after start: the scan back would find nothing
        j = lo - 1 if lo and self.maxends[lo - 1] > start else -1  # type: ignore[index]
        misses = 0
        while j >= 0 and misses < 4:
            s, e, m = _unpack_rec(data, j * _REC_SIZE)
            if e > start:
                out.append((s, e, m & 15, _lget(self, j), m >> 8, (m >> 4) & 3))
            else:
                misses += 1
            j -= 1
        return out

    def index_before(self, t: int) -> int:
        """Index of the last record that started by `t` (sorted first); -1 if none."""
        self.sort()
        return self._bisect(t, t)[1] - 1

    def all_before(self, cutoff: int) -> bool:
        """A short list wholly ended before `cutoff` (a short-lived goroutine: most of a
        prune), told without a search; False for a long list, whatever its records."""
        return (
            self.ordered
            and self.last < cutoff
            and len(self) <= 8
            and max(map(_END, _iter_rec(self.data)), default=-_I64) < cutoff
        )

    def expire(self, cutoff: int) -> int:
        """Remove the records that ended before `cutoff`; returns how many."""
        data = self.data
        if self.all_before(cutoff):
            n = len(self)
            del data[:]
            del self[:]
            self.last = -_I64
            self.starts = self.maxends = None
            return n
        self.sort()
        data = self.data
        i = self._bisect(cutoff, cutoff)[0]
        if i == 0:
            return 0
        me = self.maxends
        if me is not None and me[i - 1] < cutoff:
            keep = []  # none of them still runs at cutoff: no record to unpack
        else:
            keep = [j for j in range(i) if _unpack_rec(data, j * _REC_SIZE)[1] >= cutoff]
        if not keep:
            del data[: i * _REC_SIZE]
            del self[:i]
            if self.starts is not None:
                del self.starts[:i]
                del self.maxends[:i]  # type: ignore[index]  # still upper bounds
        else:
            head = b"".join(data[j * _REC_SIZE : (j + 1) * _REC_SIZE] for j in keep)
            self.data = bytearray(head) + data[i * _REC_SIZE :]
            self[:] = [_lget(self, j) for j in keep] + _lget(self, slice(i, None))
            self.starts = self.maxends = None
        if not len(self):
            self.last = -_I64
        return i - len(keep)


class Candidates:
    """Waits that may turn out unclaimed (unjoined.collect), in ingest order, packed:
    `(start, end, code, detail, goid, tid, src)` per wait, taken from the front."""

    __slots__ = ("goids", "head", "recs")

    def __init__(self) -> None:
        self.recs = Recs()
        self.goids = bytearray()  # int64 each
        self.head = 0

    def append(self, rec: Rec, goid: int) -> None:
        self.recs.add_rec(*rec)
        self.goids += _pack_q(goid)

    def __len__(self) -> int:
        return len(self.recs) - self.head

    def pop_before(self, cutoff: int) -> list[tuple[int, int, int, Any, int, int, int]]:
        """The waits from the front that started before `cutoff` (ingest order: stops at
        the first later one), removed."""
        recs, goids = self.recs, self.goids
        data = recs.data
        i, n = self.head, len(recs)
        out = []
        append = out.append
        while i < n:
            s, e, m = _unpack_rec(data, i * _REC_SIZE)
            if s >= cutoff:
                break
            append((s, e, m & 15, _lget(recs, i), _unpack_q(goids, i * 8)[0], m >> 8, (m >> 4) & 3))
            i += 1
        self.head = i
        self._compact()
        return out

    def consumed(self, n: int) -> None:
        """The next `n` waits from the front were taken (unjoined.collect reads them in
        place)."""
        self.head += n
        self._compact()

    def _compact(self) -> None:
        i = self.head
        if i > 4096 and i * 2 > len(self.recs):  # drop the consumed front
            recs = self.recs
            del recs.data[: i * _REC_SIZE]
            del recs[:i]
            recs.starts = recs.maxends = None
            recs.nsorted = max(0, recs.nsorted - i)
            del self.goids[: i * 8]
            self.head = 0


class ProcTimeline:
    """Everything observed about one process."""

    __slots__ = (
        "arb",
        "by_goid",
        "by_tid",
        "candidates",
        "children",
        "claim_order",
        "claims",
        "done",
        "exe",
        "instants",
        "markers",
        "park_sources",
        "pid",
        "stw",
        "union",
    )

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.by_goid: dict[int, Recs] = {}
        self.by_tid: dict[int, Recs] = {}
        self.stw = Recs()
        # trace id + span id (24 bytes) → packed goid, tid, t (see marker())
        self.markers: dict[bytes, bytes] = {}
        self.children: dict[int, list[tuple[int, int]]] = {}  # parent → [(t, child)]
        # per arbitrated kind (PARK, GC_STW, GC_ASSIST): the sources that reported it
        self.park_sources: dict[int, set[int]] = {}
        self.arb: frozenset[int] = frozenset()  # arbitrated_codes(), kept by note_source
        self.done: dict[int, int] = {}  # goid → end of the last span joined on it
        self.instants: list[tuple[int, int, str, dict[str, Any]]] = []  # t, goid, kind, attrs
        self.exe: str | None = None
        # windows joined spans claimed: per goroutine its one (start, end), packed (most
        # goroutines run one span), or the Windows of several; (end, start, goroutine) per
        # span and goroutine in join order, to forget them; for the process-wide
        # stop-the-world (any span counts) the Windows of all spans (a handful under load)
        self.claims: dict[int, bytes | Windows] = {}
        self.claim_order = bytearray()
        self.union = Windows()
        # waits that may turn out unclaimed, in ingest order
        self.candidates = Candidates()

    def claim(self, start: int, end: int, goroutines: Iterable[int]) -> None:
        """A span [start, end] covered these goroutines (and, always, the process)."""
        claims, order = self.claims, self.claim_order
        for g in goroutines:
            lst = claims.get(g)
            if lst is None:
                claims[g] = _CLAIM.pack(start, end)
            else:
                if type(lst) is bytes:
                    w = Windows()
                    w.add(*_CLAIM.unpack(lst))
                    claims[g] = lst = w
                lst.add(start, end)
            order += _ORDER.pack(end, start, g)
        self.union.add(start, end)

    def forget_claims(self, cutoff: int) -> None:
        """Drop claims that ended before `cutoff`; O(claims dropped). A goroutine's entry
        drops what of it ended before `cutoff` whichever of its spans' entries comes first,
        so an entry left over from merged windows cannot drop a newer claim."""
        order, claims = self.claim_order, self.claims
        pos, n = 0, len(order)
        while pos < n:
            end, _, g = _ORDER.unpack_from(order, pos)
            if end >= cutoff:
                break
            pos += _ORDER.size
            lst = claims.get(g)
            if lst is None:
                continue
            if type(lst) is bytes:
                if _CLAIM.unpack(lst)[1] < cutoff:
                    del claims[g]
            elif not lst.forget(cutoff):
                del claims[g]
        if pos:
            del order[:pos]  # a bytearray drops its front in O(1)
        self.union.forget(cutoff)

    def claimed(self, goid: int, start: int, end: int) -> bool:
        if not goid:  # any span of the process
            return self.union.overlaps(start, end)
        lst = self.claims.get(goid)
        if lst is None:
            return False
        if type(lst) is bytes:
            a, b = _CLAIM.unpack(lst)
            return a < end and start < b
        return lst.overlaps(start, end)

    # -- queries -------------------------------------------------------------------

    def marker(self, trace_id: bytes, span_id: bytes) -> tuple[int, int] | None:
        """(goid, tid) of the span marker of this span, if one was seen."""
        v = self.markers.get(trace_id + span_id)
        if v is None:
            return None
        goid, tid, _ = _MARK.unpack(v)
        return goid, tid

    def arbitrated(self, code: int) -> bool:
        """True when more than one source reported this kind (then only `prefer` counts):
        an ebpf receiver with only its `gc` probes must not silence gotrace's parks."""
        return len(self.park_sources.get(code, ())) > 1

    def arbitrated_codes(self) -> frozenset[int]:
        """The kinds reported by more than one source (usually none: one receiver)."""
        return frozenset(c for c, srcs in self.park_sources.items() if len(srcs) > 1)

    def note_source(self, code: int, src: int) -> None:
        """`src` reported a kind that is arbitrated between sources (PARK, GC_STW,
        GC_ASSIST); `arb` (the kinds more than one source reported) is kept up to date
        here, so queries read it instead of recomputing it per span."""
        srcs = self.park_sources.get(code)
        if srcs is None:
            srcs = self.park_sources[code] = set()
        if src not in srcs:
            srcs.add(src)
            self.arb = self.arbitrated_codes()

    def goroutine(self, goid: int, start: int, end: int, prefer: int) -> list[Rec]:
        recs = self.by_goid.get(goid)
        if not recs:
            return []
        out = recs.overlapping(start, end)
        arb = self.arb
        if arb:
            out = [r for r in out if r[5] == prefer or r[2] not in arb]
        return out

    def thread(self, tid: int, start: int, end: int) -> list[Rec]:
        recs = self.by_tid.get(tid)
        if not recs:
            return []
        return recs.overlapping(start, end)

    def stop_the_world(self, start: int, end: int, prefer: int) -> list[Rec]:
        if not self.stw:
            return []
        out = self.stw.overlapping(start, end)
        if self.arbitrated(GC_STW):
            out = [r for r in out if r[5] == prefer]
        return out

    def last_activity(self, goid: int, prefer: int) -> int:
        """End of the goroutine's last observed interval (0 when none)."""
        recs = self.by_goid.get(goid)
        if not recs:
            return 0
        recs.sort()
        arb = self.arb
        best = 0
        for r in recs[-8:]:
            if (r[5] == prefer or r[2] not in arb) and r[1] > best:
                best = r[1]
        return best

    def syscall_before(self, goid: int, tid: int, t: int, window_ns: int) -> Rec | None:
        """The goroutine's (else its thread's) last syscall that ended by `t`, within
        `window_ns`: the read that returned EAGAIN before a netpoll park names the peer."""
        lo_t, hi_e = t - window_ns, t + 1_000_000
        for key, store in ((goid, self.by_goid), (tid, self.by_tid)):
            recs = store.get(key) if key else None
            if not recs:
                continue
            if not recs.ordered:
                recs.sort()
            if len(recs) <= 8:  # a short goroutine: its few records unpacked once
                rows = list(_REC.iter_unpack(recs.data))
                j = bisect_right(rows, t, key=_START) - 1
                while j >= 0:
                    s_, e_, m = rows[j]
                    if s_ < lo_t:
                        break
                    if m & 15 == SYSCALL and e_ <= hi_e and _lget(recs, j)[1]:
                        return (s_, e_, m & 15, _lget(recs, j), m >> 8, (m >> 4) & 3)
                    j -= 1
                continue
            j = recs.index_before(t)
            data = recs.data
            while j >= 0:
                s_, e_, m = _unpack_rec(data, j * _REC_SIZE)
                if s_ < lo_t:
                    break
                if m & 15 == SYSCALL and e_ <= hi_e and _lget(recs, j)[1]:
                    return recs.rec(j)
                j -= 1
        return None


class Timelines:
    """All processes' timelines plus the TCP events (indexed by connection, since the
    kernel reports TCP events from whatever task is current, often not the app's)."""

    def __init__(self, max_events: int, min_episode_ns: int = 0) -> None:
        self.procs: dict[int, ProcTimeline] = {}
        self.min_episode_ns = min_episode_ns
        # (time, pid, store, key) of every per-key list, in creation order: expiry visits
        # only lists that may hold old events, never all of them (O(work), not O(keys))
        self._touch: deque[tuple[int, int, int, Any]] = deque()
        self.tcp: dict[frozenset[str], list[tuple[int, dict[str, Any]]]] = {}
        self.max_events = max_events
        self.total = 0
        # (latest end in an ingested batch, events stored from it): drop-oldest by batch
        self._batches: deque[tuple[int, int]] = deque()
        # interned details: the same syscall targets and wait reasons recur event after
        # event; one object each, not one per record
        self._details: dict[tuple[str, str], tuple[str, str]] = {}
        self._reasons: dict[tuple[str, str, str], WaitReason] = {}

    def _intern(self, detail: tuple[str, str]) -> tuple[str, str]:
        if len(self._details) >= _INTERN_MAX:
            self._details.clear()
        self._details[detail] = detail
        return detail

    def _wait_reason(self, reason: str, target: str, op: str) -> WaitReason:
        key = (reason, target, op)
        got = self._reasons.get(key)
        if got is None:
            if len(self._reasons) >= _INTERN_MAX:
                self._reasons.clear()
            got = self._reasons[key] = WaitReason(reason, target, op)
        return got

    def observed(self, pid: int) -> bool:
        return pid in self.procs

    def proc(self, pid: int) -> ProcTimeline:
        tl = self.procs.get(pid)
        if tl is None:
            tl = self.procs[pid] = ProcTimeline(pid)
        return tl

    def add(self, events: Iterable[Event]) -> int:
        """Store events; returns how many arrived too late for a span already emitted."""
        procs = self.procs
        late = stored = 0
        latest = 0
        min_ep = self.min_episode_ns
        details = self._details
        sources = SOURCES
        pack_rec = _pack_rec
        pack_q = _pack_q
        fromhex = bytes.fromhex
        for e in events:
            kind = e.kind
            start, end = e.start_ns, e.end_ns
            if end > latest:
                latest = end
            if kind == "tcp":
                a = e.attrs
                key = frozenset(
                    (
                        endpoint(a.get("saddr", ""), a.get("sport", 0)),
                        endpoint(a.get("daddr", ""), a.get("dport", 0)),
                    )
                )
                lst = self.tcp.get(key)
                if lst is None:
                    lst = self.tcp[key] = []
                    self._touch.append((start, -1, _TCP, key))
                lst.append((start, a))
                stored += 1
                continue
            pid = e.pid
            tl = procs.get(pid)
            if tl is None:
                tl = procs[pid] = ProcTimeline(pid)
            goid = e.goid
            tid = e.tid
            src = sources.get(e.source, OTHER_SOURCE)
            if kind == "park":
                a = e.attrs
                code = PARK
                detail = a.get("reason") or "unknown"
                if "fd_target" in a:
                    op = "write" if a.get("mode") in ("w", "write") else "read"
                    detail = self._wait_reason(detail, a["fd_target"], op)
                srcs = tl.park_sources.get(PARK)
                if srcs is None or src not in srcs:
                    tl.note_source(PARK, src)
            elif kind == "syscall":
                a = e.attrs
                code = SYSCALL
                # one detail tuple per (name, target), shared by every record of it
                detail = (a.get("name") or f"syscall_{a.get('nr', '?')}", a.get("fd_target") or "")
                detail = details.get(detail) or self._intern(detail)
            elif kind == "offcpu":
                if e.attrs.get("state") == "preempted":
                    code, detail = RUNQUEUE, "preempted"
                else:
                    code, detail = OFFCPU, e.attrs.get("state", "blocked")
            elif kind == "runqueue":
                code, detail = RUNQUEUE, e.attrs.get("after", "")
            elif kind == "gc_assist":
                code, detail = GC_ASSIST, None
                srcs = tl.park_sources.get(GC_ASSIST)
                if srcs is None or src not in srcs:
                    tl.note_source(GC_ASSIST, src)
            elif kind == "gc_stw":
                if not (-_I64 <= start < _I64 and -_I64 <= end < _I64 and tid < _MAX_TID):
                    continue
                tl.note_source(GC_STW, src)
                detail = e.attrs.get("reason") or ""
                tl.stw.add_rec(start, end, GC_STW, detail, tid, src)
                if end - start >= min_ep:
                    tl.candidates.append((start, end, GC_STW, detail, tid, src), 0)
                stored += 1
                continue
            elif kind == "span_marker":
                a = e.attrs
                try:
                    t_id, s_id = a.get("trace_id", b""), a.get("span_id", b"")
                    if type(t_id) is str and type(s_id) is str:  # hex text: the receivers'
                        key = fromhex(t_id) + fromhex(s_id)
                    else:
                        key = _id_bytes(t_id) + _id_bytes(s_id)
                    if key not in tl.markers:
                        tl.markers[key] = _MARK.pack(goid, tid, start)
                        stored += 1
                except (ValueError, TypeError, struct.error):
                    pass  # not hex ids, or out of range: no span can match it
                continue
            elif kind == "lineage":
                a = e.attrs
                parent = int(a.get("parent_goid") or 0)
                child = int(a.get("child_goid") or 0)
                if parent and child:
                    kids = tl.children.get(parent)
                    if kids is None:
                        kids = tl.children[parent] = []
                        self._touch.append((start, pid, _KIDS, parent))
                    kids.append((start, child))
                    stored += 1
                continue
            elif kind == "grpc":
                if e.attrs.get("type") == "flow_control_wait" and end > start and goid:
                    code, detail = GRPC_FC, e.attrs
                else:
                    tl.instants.append((start, goid, "grpc", e.attrs))
                    stored += 1
                    continue
            else:
                continue  # unknown kinds are ignored (a newer receiver than this processor)
            try:
                packed = pack_rec(start, end, code | src << 4 | tid << 8)
            except struct.error:
                continue  # does not fit the int64 columns (no receiver sends such times)
            if goid and (not tid or (kind != "offcpu" and kind != "runqueue")):
                done = tl.done
                if done and start < done.get(goid, 0):
                    late += 1
                lst = tl.by_goid.get(goid)
                if lst is None:
                    lst = tl.by_goid[goid] = Recs()
                    self._touch.append((start, pid, _GOID, goid))
                if end - start >= min_ep and (
                    (code == PARK and detail in PARK_CAUSE) or code in _CANDIDATE_CODES
                ):  # Candidates.append, inlined
                    cands = tl.candidates
                    cands.recs.data += packed
                    cands.recs.append(detail)
                    cands.goids += pack_q(goid)
            else:
                lst = tl.by_tid.get(tid)
                if lst is None:
                    lst = tl.by_tid[tid] = Recs()
                    self._touch.append((start, pid, _TID, tid))
            # Recs.append, inlined (the hot loop)
            if start < lst.last and lst.ordered:
                lst.ordered = False
                lst.nsorted = len(lst)
            lst.last = start
            lst.data += packed
            lst.append(detail)
            if lst.starts is not None:
                lst.starts.append(start)
                me = lst.maxends
                me.append(end if not me or end > me[-1] else me[-1])  # type: ignore[union-attr]
            stored += 1
        if stored:
            self.total += stored
            self._batches.append((latest, stored))
        return late

    def over_limit(self) -> bool:
        return self.total > self.max_events

    def drop_oldest(self) -> int:
        """Drop the oldest events until at most 99% of max_events remain (a little
        hysteresis, so a full timeline does not prune on every batch, but small steps: a
        prune is a pause of the event loop, ~1 ms per 2,000 events); returns how many went."""
        target = int(self.max_events * 0.99)
        dropped = 0
        while self.total > target and self._batches:
            excess = self.total - target
            cutoff, n = 0, 0
            while self._batches and n < excess:
                t, k = self._batches.popleft()
                n += k
                cutoff = max(cutoff, t)
            dropped += self.expire(cutoff + 1, claims=False)
        return dropped

    def expire(self, cutoff: int, claims: bool = True) -> int:
        """Remove every event that ended before `cutoff` (ns); returns how many.

        `claims=False` (a prune for max_events) keeps the windows spans claimed: the
        unjoined pass still judges the waits they cover (it forgets them itself once it
        has), and without them it would report every claimed wait as unjoined.

        Per-key lists are visited in the order they were created (then last visited):
        a pass costs what it removes plus the few long-lived keys still holding old
        events, not one step per goroutine ever seen."""
        removed = 0
        while self._batches and self._batches[0][0] < cutoff:
            self._batches.popleft()
        touch = self._touch
        procs = self.procs
        while touch and touch[0][0] < cutoff:
            _, pid, store, key = touch.popleft()
            if store == _TCP:
                lst = self.tcp.get(key)
                if lst is None:
                    continue
                keep = [x for x in lst if x[0] >= cutoff]
                removed += len(lst) - len(keep)
                if keep:
                    self.tcp[key] = keep
                    touch.append((max(keep[-1][0], cutoff), pid, store, key))
                else:
                    del self.tcp[key]
                continue
            tl = procs.get(pid)
            if tl is None:
                continue
            if store == _KIDS:
                kids = tl.children.get(key)
                if kids is None:
                    continue
                keep_kids = [x for x in kids if x[0] >= cutoff]
                removed += len(kids) - len(keep_kids)
                if keep_kids:
                    tl.children[key] = keep_kids
                    touch.append((max(keep_kids[-1][0], cutoff), pid, store, key))
                else:
                    del tl.children[key]
                continue
            recs_store = tl.by_goid if store == _GOID else tl.by_tid
            recs = recs_store.get(key)
            if recs is None:
                continue
            # a short-lived goroutine wholly in the past (a goroutine per request: most
            # of a prune): the list goes as one, nothing inside it is edited
            if recs.all_before(cutoff):
                removed += len(recs)
                del recs_store[key]
                continue
            removed += recs.expire(cutoff)
            if recs:
                touch.append((max(recs.last, cutoff), pid, store, key))
            else:
                del recs_store[key]
        for tl in procs.values():
            removed += tl.stw.expire(cutoff)
            # one pass over each insertion-ordered dict (deleting from the front and
            # restarting iter() would rescan the deleted slots every time: quadratic)
            markers = tl.markers
            if markers:
                old = []
                for k, v in markers.items():
                    if _MARK.unpack(v)[2] >= cutoff:
                        break
                    old.append(k)
                for k in old:
                    del markers[k]
                removed += len(old)
            if tl.instants and tl.instants[0][0] < cutoff:
                keep_i = [x for x in tl.instants if x[0] >= cutoff]
                removed += len(tl.instants) - len(keep_i)
                tl.instants = keep_i
            if claims:
                tl.forget_claims(cutoff)
            done = tl.done
            if done:  # insertion order ≈ time order: stop at the first recent one
                old = []
                for g, t in done.items():
                    if t >= cutoff:
                        break
                    old.append(g)
                for g in old:
                    del done[g]
        self.total = max(0, self.total - removed)
        return removed


def _id_bytes(v: object) -> bytes:
    """A span marker id as bytes (receivers send hex text; bytes are accepted)."""
    return bytes(v) if isinstance(v, bytes | bytearray) else bytes.fromhex(str(v))
