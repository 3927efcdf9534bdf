"""Where a span's wall time went: the interval sweep, the critical path through child
goroutines, the categories, the cause and the one-sentence diagnosis.

The sweep walks the span's own goroutine: at every instant exactly one segment is
active (the highest-priority interval, by code, see categories.py), so categories are
disjoint and sum to the span's duration by construction. Time no interval covers is
on-CPU when a goroutine was joined and unexplained when none was.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from otel_goblock.processors.goblock.categories import (
    GC_ASSIST,
    GC_STW,
    GRPC_FC,
    ON_CPU,
    PARK,
    PARK_CAUSE,
    RUNQUEUE,
    SYSCALL,
    UNKNOWN,
    WAITS_ON_CHILDREN,
    peer_of,
    slug,
    syscall_class,
    verb,
)
from otel_goblock.processors.goblock.timeline import ProcTimeline, Rec, WaitReason

# start, end, code, detail, goroutine (0: none joined), tid
Seg = tuple[int, int, int, Any, int, int]

# syscalls a Go thread makes from the scheduler (stopm's futex sleep, findrunnable's
# netpoll, spinning's usleep) when it has nothing to run
SCHEDULER_SYSCALLS = frozenset(
    {"futex", "epoll_wait", "epoll_pwait", "epoll_pwait2", "nanosleep", "sched_yield"}
)
WAITING_FOR_P = "go scheduler (waiting for a P)"

# a child counts as the one a wait ended on if its last activity is this close to the wake
_WAKE_SLACK_NS = 2_000_000
# how far back the syscall that named a netpoll wait's peer may be
_PEER_LOOKBACK_NS = 50_000_000
# memo tables of recurring values (details, peers): small, so a stream of one-off values
# (a new file path or ephemeral port per request) cycles them quickly instead of growing
# the heap for an hour before the first clear (the 30 min soak grew 13 % that way)
_MEMO_MAX = 4096


_first = itemgetter(0)
_third = itemgetter(2)


def sweep(recs: list[Rec], start: int, end: int, default: int, goid: int = 0) -> list[Seg]:
    """Disjoint segments covering [start, end]: the lowest code active wins each instant."""
    # each record clipped to the span, already as the segment it becomes when nothing
    # overlaps it (the common case): no intermediate tuple per record
    items: list[Seg] = []
    for r in recs:
        s = r[0] if r[0] > start else start
        e = r[1] if r[1] < end else end
        if e > s:
            items.append((s, e, r[2], r[3], goid, r[4]))
    if not items:
        return [(start, end, default, None, goid, 0)] if end > start else []
    items.sort(key=_first)
    # fast path: intervals that do not overlap (the common case) tile directly
    segs: list[Seg] = []
    pos = start
    for it in items:
        s = it[0]
        if s < pos:
            break
        if s > pos:
            segs.append((pos, s, default, None, goid, 0))
        segs.append(it)
        pos = it[1]
    else:
        if pos < end:
            segs.append((pos, end, default, None, goid, 0))
        return segs
    bounds = {start, end}
    for it in items:
        bounds.add(it[0])
        bounds.add(it[1])
    points = sorted(bounds)
    heap: list[tuple[int, int, int, int]] = []  # code, start, index, end
    segs = []
    i, n = 0, len(items)
    for k in range(len(points) - 1):
        a, b = points[k], points[k + 1]
        while i < n and items[i][0] <= a:
            it = items[i]
            heapq.heappush(heap, (it[2], it[0], i, it[1]))
            i += 1
        while heap and heap[0][3] <= a:
            heapq.heappop(heap)
        if heap:
            it = items[heap[0][2]]
            code, detail, tid = it[2], it[3], it[5]
        else:
            code, detail, tid = default, None, 0
        if segs:
            last = segs[-1]
            if last[1] == a and last[2] == code and last[3] is detail:
                segs[-1] = (last[0], b, code, detail, goid, last[5] or tid)
                continue
        segs.append((a, b, code, detail, goid, tid))
    return segs


def _clip(recs: list[Rec], a: int, b: int) -> list[Rec]:
    out = []
    for r in recs:
        s = r[0] if r[0] > a else a
        e = r[1] if r[1] < b else b
        if e > s:
            out.append((s, e, r[2], r[3], r[4], r[5]))
    return out


def _thread_events(
    tl: ProcTimeline, recs: list[Rec], start: int, end: int, end_tid: int
) -> list[Rec]:
    """Kernel events without a goid that belong to the goroutine: those of the thread it
    ran on during each of its run segments (the gaps between its parks). A run segment's
    thread is known from any event of the goroutine inside it, from the park that ends
    it (the goroutine parked on that thread) or, for the last one, the span marker."""
    # one pass in start order: a run ends where a park begins; its thread is the first
    # thread an event of the goroutine shows inside it, else the park's
    ordered = sorted(recs, key=_first)
    runs: list[tuple[int, int, int]] = []
    cur, run_tid = start, 0
    for r in ordered:
        if r[2] == PARK:
            if r[0] > cur:
                runs.append((cur, r[0], run_tid or r[4]))
            if r[1] > cur:
                cur = r[1]
            run_tid = 0
        elif not run_tid and r[4] and r[1] > cur:
            run_tid = r[4]
    if cur < end:
        runs.append((cur, end, run_tid or end_tid))
    out: list[Rec] = []
    if not runs:
        return out
    # one query per thread, over the stretch from its first run to its last (a goroutine
    # usually stays on one thread: one search instead of one per run), clipped per run
    found: dict[int, list[Rec]] = {}
    first = runs[0][2]
    if list(map(_third, runs)).count(first) == len(runs):  # no generator: ~1 us less
        if first:
            found[first] = tl.thread(first, runs[0][0], runs[-1][1])
    else:
        stretch: dict[int, list[int]] = {}
        for a, b, tid in runs:
            if tid:
                ab = stretch.get(tid)
                if ab is None:
                    stretch[tid] = [a, b]
                else:
                    ab[1] = b  # runs are in time order
        for tid, (a, b) in stretch.items():
            found[tid] = tl.thread(tid, a, b)
    for a, b, tid in runs:
        recs_t = found.get(tid) if tid else None
        if not recs_t:
            continue
        for r in recs_t:
            s = r[0] if r[0] > a else a
            e = r[1] if r[1] < b else b
            if e > s:
                if r[2] == SYSCALL and r[3][0] in SCHEDULER_SYSCALLS:
                    # the thread idles in the Go scheduler (g0: no goid): the goroutine is
                    # not on it and not parked, so it is runnable, waiting for a P
                    out.append((s, e, RUNQUEUE, WAITING_FOR_P, r[4], r[5]))
                else:
                    out.append((s, e, r[2], r[3], r[4], r[5]))
    return out


class Analysis:
    """What the sweep found for one span: its segments, the goroutines that count for it
    and the records it read (their fd targets, for TCP span events, are collected only
    when asked: most processes have no TCP events to match)."""

    __slots__ = ("_recs", "goroutines", "own", "root", "segs", "waited_on")

    def __init__(self, segs: list[Seg], root: int = 0, goroutines: set[int] | None = None) -> None:
        self.segs = segs
        self.root = root  # the span's own goroutine
        # the span's goroutine and children
        self.goroutines: set[int] = goroutines if goroutines is not None else set()
        # child goid → the parent's wait reason, for the diagnosis of critical-path episodes
        self.waited_on: dict[int, str] = {}
        self._recs: list[list[Rec]] = []  # the records the sweep read, per goroutine
        # goroutine → (from, to, its own records in that window as
        # ProcTimeline.goroutine found them): the peer of a netpoll wait is looked for
        # there first, not in the timeline again
        self.own: dict[int, tuple[int, int, list[Rec]]] = {}

    @property
    def targets(self) -> set[str]:
        """fd targets of the syscalls the span's sweep read (TCP span events)."""
        return {r[3][1] for recs in self._recs for r in recs if r[2] == SYSCALL and r[3][1]}


def analyze(
    tl: ProcTimeline,
    goid: int,
    start: int,
    end: int,
    prefer: int,
    depth: int,
    end_tid: int = 0,
) -> Analysis:
    """Segments of [start, end] for a span; goid 0 means no goroutine was joined.  One
    span through analyze_many: the span's root analysis is written once, there."""
    return analyze_many(tl, [(goid, start, end, end_tid)], prefer, depth)[0]


def _goroutine_segs(
    tl: ProcTimeline,
    goid: int,
    start: int,
    end: int,
    prefer: int,
    depth: int,
    end_tid: int,
    stw: list[Rec],
    out: Analysis,
) -> list[Seg]:
    recs = tl.goroutine(goid, start, end, prefer)
    if goid not in out.own:
        out.own[goid] = (start, end, recs)
    if tl.by_tid:
        recs = _with_thread_events(tl, recs, start, end, end_tid)
    return _segs(tl, goid, start, end, prefer, depth, stw, out, recs)


def _with_thread_events(
    tl: ProcTimeline, recs: list[Rec], start: int, end: int, end_tid: int
) -> list[Rec]:
    mine = _thread_events(tl, recs, start, end, end_tid)
    return recs + mine if mine else recs


def _segs(
    tl: ProcTimeline,
    goid: int,
    start: int,
    end: int,
    prefer: int,
    depth: int,
    stw: list[Rec],
    out: Analysis,
    recs: list[Rec],
) -> list[Seg]:
    """A goroutine's segments of [start, end] from its records (its threads' included):
    the sweep, then its waits on children followed down `depth` levels."""
    out._recs.append(recs)
    segs = sweep(recs + stw if stw else recs, start, end, ON_CPU, goid)
    kids = tl.children.get(goid)
    if not kids or depth <= 0:
        return segs
    return _critical_path(tl, start, end, prefer, depth, stw, out, recs, segs, kids)


def analyze_many(
    tl: ProcTimeline, spans: list[tuple[int, int, int, int]], prefer: int, depth: int
) -> list[Analysis]:
    """analyze() of many spans — (goid, start, end, end_tid) each —, stage by stage over
    all of them (their goroutines' records, their threads' records, the sweeps) rather
    than span by span: the same answers for less CPU (see join.Joiner.prepare_scope)."""
    no_recs: list[Rec] = []
    stws = [tl.stop_the_world(s, e, prefer) for _, s, e, _ in spans] if tl.stw else None
    goroutine = tl.goroutine
    owns = [goroutine(g, s, e, prefer) if g else no_recs for g, s, e, _ in spans]
    alls = owns
    if tl.by_tid:
        alls = [
            _with_thread_events(tl, recs, s, e, t) if g else recs
            for (g, s, e, t), recs in zip(spans, owns, strict=True)
        ]
    out: list[Analysis] = []
    for k, (goid, start, end, _) in enumerate(spans):
        stw = stws[k] if stws is not None else no_recs
        if not goid:
            out.append(Analysis(sweep(stw, start, end, UNKNOWN)))
            continue
        an = Analysis([], root=goid, goroutines={goid})
        an.own[goid] = (start, end, owns[k])
        an.segs = _segs(tl, goid, start, end, prefer, depth, stw, an, alls[k])
        out.append(an)
    return out


def _critical_path(
    tl: ProcTimeline,
    start: int,
    end: int,
    prefer: int,
    depth: int,
    stw: list[Rec],
    out: Analysis,
    recs: list[Rec],
    segs: list[Seg],
    kids: list[tuple[int, int]],
) -> list[Seg]:
    """The segments of a goroutine's waits on its children replaced by what the child
    it waited for was doing (see _goroutine_segs)."""
    result: list[Seg] = []
    for seg in segs:
        if seg[2] != PARK or seg[3] not in WAITS_ON_CHILDREN:
            result.append(seg)
            continue
        # the last child (spawned before the wake) to finish is what the wait ended on.
        # The wake is the end of the whole park, not of this segment: a stop-the-world
        # inside the wait cuts it into segments, and each is the same wait on the child.
        wake = max(
            (r[1] for r in recs if r[2] == PARK and r[0] <= seg[0] and r[1] >= seg[1]),
            default=seg[1],
        )
        best, best_t, best_end = 0, 0, 0
        for t, child in kids:
            if start <= t <= wake:
                out.goroutines.add(child)
                last = tl.last_activity(child, prefer)
                # (a child spawned after this segment cannot be what it waited on)
                if seg[0] < last <= wake + _WAKE_SLACK_NS and last > best_end and t < seg[1]:
                    best, best_t, best_end = child, t, last
        if not best:
            result.append(seg)
            continue
        a = max(seg[0], best_t)
        if a > seg[0]:
            result.append((seg[0], a, seg[2], seg[3], seg[4], seg[5]))
        out.waited_on[best] = seg[3]
        child_stw = [r for r in stw if r[0] < seg[1] and r[1] > a]
        result.extend(_goroutine_segs(tl, best, a, seg[1], prefer, depth - 1, 0, child_stw, out))
    return result


# -- categories, cause, diagnosis --------------------------------------------------------


def category(code: int, detail: Any) -> str:
    """The attribute key part (goblock.<category>.ms) of a segment."""
    if code == ON_CPU:
        return "on_cpu"
    if code == PARK:
        return "park." + slug(detail)
    if code == SYSCALL:
        return "syscall"
    if code == RUNQUEUE:
        return "runqueue"
    if code == GC_STW:
        return "gc.stw"
    if code == GC_ASSIST:
        return "gc.assist"
    if code == GRPC_FC:
        return "grpc.flow_control"
    return "unattributed"


def cause_of(code: int, detail: Any) -> str | None:
    """The cause vocabulary value of a segment; None when the time is unexplained."""
    if code == ON_CPU:
        return "on_cpu"
    if code == PARK:
        return PARK_CAUSE.get(detail)
    if code == SYSCALL:
        return syscall_class(detail[0], detail[1])
    if code == RUNQUEUE:
        return "runqueue"
    if code == GC_STW:
        return "gc_stw"
    if code == GC_ASSIST:
        return "gc_assist"
    if code == GRPC_FC:
        return "grpc_flow_control"
    return None


FIXED_CATEGORIES = ("on_cpu", "runqueue", "syscall", "gc.stw", "gc.assist", "unattributed")


@dataclass(slots=True)
class Breakdown:
    ns: dict[str, int]  # category → ns (fixed categories always present)
    cause: str
    diagnosis: str
    episodes: list[Seg]


def fmt_ms(ns: int) -> str:
    ms = ns / 1e6
    if ms >= 10:
        return f"{ms:.0f}"
    if ms >= 1:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


# (category, cause) per segment detail, one cache per code: the same few details recur
_INFO_BY_CODE: list[dict[Any, tuple[str, str | None]]] = [{} for _ in range(UNKNOWN + 1)]


def _info(code: int, detail: Any) -> tuple[str, str | None]:
    got = (category(code, detail), cause_of(code, detail))
    if code != GRPC_FC:  # a dict detail: not cacheable
        cache = _INFO_BY_CODE[code]
        if len(cache) > _MEMO_MAX:
            cache.clear()
        cache[detail] = got
    return got


def summarize(
    tl: ProcTimeline, an: Analysis, start: int, end: int, joined: bool, min_episode_ns: int
) -> Breakdown:
    # one pass: time per category and per cause straight into their dicts (keys in the
    # order segments first show them: the order of the attributes, and of ties of causes)
    ns = dict.fromkeys(FIXED_CATEGORIES, 0)
    by_cause: dict[str | None, int] = {}
    episodes = []
    waits = []  # (segment, its cause, its length) of every wait, in order
    by_code = _INFO_BY_CODE
    on_cpu = -1  # running time, summed apart (half the segments); -1: none seen yet
    for seg in an.segs:
        code = seg[2]
        d = seg[1] - seg[0]
        if code == ON_CPU:
            if on_cpu < 0:
                on_cpu = 0
                if "on_cpu" not in by_cause:
                    by_cause["on_cpu"] = 0  # its place in the order (ties of causes)
            on_cpu += d
            continue
        detail = seg[3]
        info = by_code[code].get(detail) if code != GRPC_FC else None  # dict: not cached
        if info is None:
            info = _info(code, detail)
        cat, c = info
        ns[cat] = ns.get(cat, 0) + d
        by_cause[c] = by_cause.get(c, 0) + d
        if code < ON_CPU:
            waits.append((seg, c, d))
            if d >= min_episode_ns:
                episodes.append(seg)
    if on_cpu > 0:
        ns["on_cpu"] += on_cpu
        by_cause["on_cpu"] += on_cpu
    duration = end - start
    unexplained = by_cause.get(None, 0)
    cause = "unattributed"
    if not (duration > 0 and unexplained * 2 > duration):
        most = -1
        for c, v in by_cause.items():
            if c is not None and v > most:
                cause, most = c, v
    # the diagnosis names the largest wait of the dominant cause (the stretches of one
    # wait split by others are summed)
    biggest: dict[str, tuple[int, Seg]] = {}
    if cause != "unattributed" and cause != "on_cpu":
        stretch: dict[tuple[int, Any, int], int] = {}
        best_total = -1
        for seg, c, d in waits:
            if c == cause:
                code = seg[2]
                k = (code, id(seg[3]) if code == GRPC_FC else seg[3], seg[4])
                total = stretch[k] = stretch.get(k, 0) + d
                if total > best_total:
                    best_total = total
                    biggest[cause] = (total, seg)
    diagnosis = _diagnose(tl, an, cause, by_cause, biggest, duration, joined)
    return Breakdown(ns, cause, diagnosis, episodes)


def _diagnose(
    tl: ProcTimeline,
    an: Analysis,
    cause: str,
    by_cause: dict[str | None, int],
    biggest: dict[str, tuple[int, Seg]],
    duration: int,
    joined: bool,
) -> str:
    if cause == "unattributed":
        total = fmt_ms(duration)
        ms = fmt_ms(by_cause.get(None, 0))
        if not joined:
            return (
                f"{ms} ms of {total} ms unexplained: no goroutine joined to this span "
                "(no span marker or goblock.goroutine.id)"
            )
        return f"{ms} ms of {total} ms unexplained (off-CPU with no syscall or park reason seen)"
    ms = fmt_ms(by_cause.get(cause, 0))
    if cause == "on_cpu":
        return f"ran on CPU for {ms} ms of {fmt_ms(duration)} ms (CPU-bound)"
    seg = biggest[cause][1]
    text = describe(tl, seg, ms, an)
    if seg[4] and seg[4] != an.root:
        reason = an.waited_on.get(seg[4], "")
        text += f" in child goroutine {seg[4]}, which this span waited for ({reason})"
    return text


def describe(tl: ProcTimeline, seg: Seg, ms: str, an: Analysis | None = None) -> str:
    """One wait in words: what waited on what, how long."""
    code, detail = seg[2], seg[3]
    if code == PARK:
        cause = PARK_CAUSE.get(detail)
        if cause == "network":
            peer = episode_peer(tl, seg, an)
            if peer:
                name = peer[0]
                return f"blocked {ms} ms {verb(name)} {peer[1]} (netpoll wait)"
            return f"blocked {ms} ms in netpoll wait (socket I/O; peer not seen)"
        if cause == "lock":
            return f"waited {ms} ms for a lock ({detail})"
        if cause == "channel":
            return f"waited {ms} ms on {detail}"
        if cause == "sleep":
            return f"slept {ms} ms (timer: time.Sleep or a ticker)"
        if cause == "runqueue":
            return f"preempted and waiting {ms} ms to run again (Go run queue)"
        if cause == "gc_assist":
            return f"waited {ms} ms for the garbage collector ({detail})"
        return f"parked {ms} ms ({detail})"
    if code == SYSCALL:
        name, target = detail
        cls = syscall_class(name, target)
        if cls == "network":
            peer = peer_of(target)
            if peer:
                return f"blocked {ms} ms {verb(name)} {peer} ({name} syscall)"
            return f"blocked {ms} ms in {name} on a socket"
        if cls == "disk":
            where = f" on {target}" if target else ""
            return f"blocked {ms} ms in {name}{where} (disk I/O)"
        where = f" on {target}" if target else ""
        return f"blocked {ms} ms in syscall {name}{where}"
    if code == RUNQUEUE:
        return f"runnable but waiting {ms} ms for a CPU (run queue)"
    if code == GC_STW:
        why = f" ({detail})" if detail else ""
        return f"stopped {ms} ms by garbage-collector stop-the-world{why}"
    if code == GC_ASSIST:
        return f"spent {ms} ms in garbage-collector mark assist"
    if code == GRPC_FC:
        return f"blocked {ms} ms on HTTP/2 flow control (send window or stream quota exhausted)"
    return f"off-CPU {ms} ms"


def _syscall_before_in(own: tuple[int, int, list[Rec]], t: int) -> tuple[Rec] | None:
    """ProcTimeline.syscall_before on the goroutine's records the sweep already has, when
    they decide it: (the syscall,) if found among its records from `since` on (all of
    them up to `until` are there, in start order); None when the search would go on
    before `since` or past the goroutine (then ask the timeline: same answer, slower)."""
    since, until, recs = own
    if t > until:  # records after the window are not at hand
        return None
    lo_t, hi_e = t - _PEER_LOOKBACK_NS, t + 1_000_000
    # the records found from `since` on, in start order (ProcTimeline.goroutine lists
    # them first; older ones still running follow, started before `since`)
    for i in range(len(recs) - 1, -1, -1):
        r = recs[i]
        s = r[0]
        if s < since or s > t:
            continue
        if s < lo_t:
            return None  # the goroutine's search ends here: its thread's is next
        if r[2] == SYSCALL and r[1] <= hi_e and r[3][1]:
            return (r,)
    return None


# id(segment) → (segment, its peer): the diagnosis and the episode span of one wait ask
# for its peer in turn (the entry keeps the segment alive, so an id is never reused
# while cached)
_peer_memo: dict[int, tuple[Seg, tuple[str, str] | None]] = {}


def episode_peer(tl: ProcTimeline, seg: Seg, an: Analysis | None = None) -> tuple[str, str] | None:
    """(syscall, peer) of a netpoll wait: the fd the park itself names, else the socket
    syscall right before the park (the read that returned EAGAIN). `an`: the span's
    analysis, whose records of the goroutine are searched before the timeline."""
    got = _peer_memo.get(id(seg))
    if got is not None and got[0] is seg:
        return got[1]
    detail = seg[3]
    target = detail.target if type(detail) is WaitReason else ""
    peer = peer_of(target) if target else ""
    if peer:
        res: tuple[str, str] | None = (detail.op, peer)
    else:
        goid = seg[4]
        r = None
        if goid:
            own = an.own.get(goid) if an is not None else None
            found = _syscall_before_in(own, seg[0]) if own is not None else None
            if found is None:  # not decided by the records at hand
                r = tl.syscall_before(goid, seg[5], seg[0], _PEER_LOOKBACK_NS)
            else:
                r = found[0]
        peer = peer_of(r[3][1]) if r else ""
        res = (r[3][0], peer) if peer else None  # type: ignore[index]
    if len(_peer_memo) >= 4096:
        _peer_memo.clear()
    _peer_memo[id(seg)] = (seg, res)
    return res
