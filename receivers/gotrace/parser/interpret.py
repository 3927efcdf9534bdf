"""From wire events to high-level records: the goroutine/GC state machine.

Which goroutine an event belongs to is not in the event: it is whatever goroutine the
emitting M (thread) is running, established by GoStart / GoStatus(Running) /
GoCreateSyscall / GoSwitch and cleared by GoStop / GoBlock / GoDestroy /
GoSyscallEndBlocked (the same rules as Go's `internal/trace/order.go`). Per-M order is
exact (one M writes its events sequentially); across Ms the order is by timestamp, so the
machine tolerates the rare clock inversion instead of failing on it:

- a GoUnblock that arrives before the GoBlock it answers is remembered for the rest of
  the generation and closes the park as soon as the GoBlock shows up (zero-length park);
- a GoStart of a goroutine we still think is parked closes the park at the start.

Intervals already open at the first event (GoStatus Waiting / Syscall, GCActive,
GCMarkAssistActive, a region end without its begin) get `start_known=False`; intervals
still open at the end of the trace are emitted by `finish()` with `end_known=False`.
"""

from __future__ import annotations

from collections.abc import Callable

from .events import RawEvent
from .generation import Generation
from .records import (
    GCInterval,
    Lineage,
    MarkAssistInterval,
    ParkInterval,
    Record,
    STWInterval,
    SyscallInterval,
    UserLog,
    UserRegion,
    UserTask,
)
from .spec import Ev
from .wire import NO_THREAD

_RUNNABLE, _RUNNING, _SYSCALL, _WAITING = 1, 2, 3, 4  # tracev2.GoStatus


class Interpreter:
    """Consumes time-ordered raw events; appends finished records to `out`.

    State lives across generations (a goroutine can stay parked for many); only the
    string table is swapped per generation (string ids are per generation).
    """

    def __init__(self) -> None:
        self.out: list[Record] = []
        self.strings: dict[int, str] = {0: ""}
        self.counts = [0] * 256  # events seen, by wire type
        self.first_ns: int | None = None
        self.last_ns = 0
        self._m_g: dict[int, int] = {}  # M → goroutine running on it (0: none)
        self._parked: dict[int, tuple[int, str, bool]] = {}  # goid → (start, reason, known)
        self._early_unblock: dict[int, tuple[int, int]] = {}  # goid → (time, unblocker)
        self._syscall: dict[int, tuple[int, bool]] = {}  # goid → (start, known)
        self._assist: dict[int, tuple[int, bool]] = {}
        self._gc: tuple[int, int, bool] | None = None  # (seq, start, known)
        self._stw: tuple[str, int, int, bool] | None = None  # (reason, goid, start, known)
        self._tasks: dict[int, tuple[int, str, int, int, bool]] = {}
        self._regions: dict[int, list[tuple[int, str, int, bool]]] = {}
        h: list[Callable[[int, int, tuple[int, ...]], None] | None] = [None] * 256
        h[Ev.GO_CREATE] = self._go_create
        h[Ev.GO_CREATE_BLOCKED] = self._go_create_blocked
        h[Ev.GO_CREATE_SYSCALL] = self._go_create_syscall
        h[Ev.GO_START] = self._go_start
        h[Ev.GO_STOP] = self._go_off_m
        h[Ev.GO_DESTROY] = self._go_destroy
        h[Ev.GO_DESTROY_SYSCALL] = self._go_destroy
        h[Ev.GO_BLOCK] = self._go_block
        h[Ev.GO_UNBLOCK] = self._go_unblock
        h[Ev.GO_SWITCH] = self._go_switch
        h[Ev.GO_SWITCH_DESTROY] = self._go_switch_destroy
        h[Ev.GO_SYSCALL_BEGIN] = self._syscall_begin
        h[Ev.GO_SYSCALL_END] = self._syscall_end
        h[Ev.GO_SYSCALL_END_BLOCKED] = self._syscall_end_blocked
        h[Ev.GO_STATUS] = self._go_status
        h[Ev.GO_STATUS_STACK] = self._go_status
        h[Ev.STW_BEGIN] = self._stw_begin
        h[Ev.STW_END] = self._stw_end
        h[Ev.GC_ACTIVE] = self._gc_active
        h[Ev.GC_BEGIN] = self._gc_begin
        h[Ev.GC_END] = self._gc_end
        h[Ev.GC_MARK_ASSIST_ACTIVE] = self._assist_active
        h[Ev.GC_MARK_ASSIST_BEGIN] = self._assist_begin
        h[Ev.GC_MARK_ASSIST_END] = self._assist_end
        h[Ev.USER_TASK_BEGIN] = self._task_begin
        h[Ev.USER_TASK_END] = self._task_end
        h[Ev.USER_REGION_BEGIN] = self._region_begin
        h[Ev.USER_REGION_END] = self._region_end
        h[Ev.USER_LOG] = self._log
        self._handlers = h

    # -- driving ------------------------------------------------------------------------

    def begin_generation(self, g: Generation) -> None:
        self.strings = g.strings
        # An unblock that never met its block within a generation was not an inversion
        # (e.g. a goroutine we never saw block): forget it so the map stays bounded.
        self._early_unblock.clear()

    def run(self, chunk: list[RawEvent]) -> None:
        """Consume a time-ordered chunk of events: the hot loop, kept to local variables.

        The three events that make up most of any trace (GoStart, GoBlock, GoUnblock) are
        handled inline, the same way their handlers do, to save a call each.
        """
        counts = self.counts
        handlers = self._handlers
        last = self.last_ns
        if self.first_ns is None and chunk:
            self.first_ns = chunk[0][0]
        m_g = self._m_g
        parked = self._parked
        early = self._early_unblock
        strings = self.strings
        append = self.out.append
        go_start, go_block, go_unblock = int(Ev.GO_START), int(Ev.GO_BLOCK), int(Ev.GO_UNBLOCK)
        for ts, m, typ, a1, a2, a3 in chunk:
            counts[typ] += 1
            # As Go's reader does: times strictly increase in the merged order, so ties
            # and the rare cross-CPU inversion become +1 ns steps (and match Go's times).
            if ts <= last:
                ts = last + 1
            last = ts
            if typ == go_start:
                m_g[m] = a1
                if early:
                    early.pop(a1, None)
                if a1 in parked:
                    p = parked.pop(a1)
                    append(ParkInterval(a1, p[0], max(p[0], ts), p[1], 0, p[2], True))
            elif typ == go_block:
                g = m_g.get(m, 0)
                m_g[m] = 0
                if g:
                    if early and g in early:
                        self._park(g, ts, strings.get(a1, ""))
                    else:
                        parked[g] = (ts, strings.get(a1, ""), True)
            elif typ == go_unblock:
                p = parked.pop(a1, None)
                if p is None:
                    early[a1] = (ts, m_g.get(m, 0))
                else:
                    append(ParkInterval(a1, p[0], max(p[0], ts), p[1], m_g.get(m, 0), p[2], True))
            else:
                h = handlers[typ]
                if h is not None:
                    self.last_ns = ts
                    h(ts, m, (a1, a2, a3))
                    if m == NO_THREAD:
                        m_g.pop(m, None)
        self.last_ns = last

    def finish(self) -> None:
        """Emit every interval still open, ending at the last timestamp of the trace."""
        end = self.last_ns
        out = self.out
        for g, (start, reason, known) in self._parked.items():
            out.append(ParkInterval(g, start, max(start, end), reason, 0, known, False))
        for g, (start, known) in self._syscall.items():
            out.append(SyscallInterval(g, start, max(start, end), False, known, False))
        for g, (start, known) in self._assist.items():
            out.append(MarkAssistInterval(g, start, max(start, end), known, False))
        if self._gc is not None:
            seq, start, known = self._gc
            out.append(GCInterval(seq, start, max(start, end), known, False))
        if self._stw is not None:
            reason, g, start, known = self._stw
            out.append(STWInterval(reason, g, start, max(start, end), known, False))
        for tid, (parent, name, g, start, known) in self._tasks.items():
            out.append(UserTask(tid, parent, name, g, start, max(start, end), known, False))
        for g, stack in self._regions.items():
            for task, name, start, known in stack:
                out.append(UserRegion(g, task, name, start, max(start, end), known, False))
        self._parked.clear()
        self._syscall.clear()
        self._assist.clear()
        self._gc = self._stw = None
        self._tasks.clear()
        self._regions.clear()

    def _start_ns(self) -> int:
        return self.first_ns if self.first_ns is not None else 0

    # -- goroutines -----------------------------------------------------------------------

    def _go_create(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        self.out.append(Lineage(self._m_g.get(m, 0), a[0], ts))

    def _go_create_blocked(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        self.out.append(Lineage(self._m_g.get(m, 0), a[0], ts))
        self._parked[a[0]] = (ts, "", True)

    def _go_create_syscall(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        self._m_g[m] = a[0]  # a cgo callback's goroutine, bound to this thread

    def _go_start(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        g = a[0]
        self._m_g[m] = g
        self._early_unblock.pop(g, None)
        p = self._parked.pop(g, None)
        if p is not None:  # the unblock came out of order (or was lost): close at the start
            self.out.append(ParkInterval(g, p[0], max(p[0], ts), p[1], 0, p[2], True))

    def _go_off_m(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        self._m_g[m] = 0

    def _go_destroy(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        g = self._m_g.get(m, 0)
        self._m_g[m] = 0
        if g:
            self._syscall.pop(g, None)
            self._assist.pop(g, None)
            for task, name, start, known in self._regions.pop(g, ()):
                # A goroutine that exits inside a region: the region ends with it.
                self.out.append(UserRegion(g, task, name, start, max(start, ts), known, False))

    def _park(self, g: int, ts: int, reason: str) -> None:
        early = self._early_unblock.pop(g, None)
        if early is not None:
            self.out.append(ParkInterval(g, ts, max(ts, early[0]), reason, early[1]))
        else:
            self._parked[g] = (ts, reason, True)

    def _go_block(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        g = self._m_g.get(m, 0)
        self._m_g[m] = 0
        if g:
            self._park(g, ts, self.strings.get(a[0], ""))

    def _unblock(self, g: int, ts: int, by: int) -> None:
        p = self._parked.pop(g, None)
        if p is None:
            self._early_unblock[g] = (ts, by)
        else:
            self.out.append(ParkInterval(g, p[0], max(p[0], ts), p[1], by, p[2], True))

    def _go_unblock(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        self._unblock(a[0], ts, self._m_g.get(m, 0))

    def _go_switch(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        # Coroutine switch (iter.Pull): current goroutine blocks (Go gives no reason),
        # the named one is unblocked and starts on this M.
        cur = self._m_g.get(m, 0)
        if cur:
            self._park(cur, ts, "")
        self._unblock(a[0], ts, cur)
        self._go_start(ts, m, a)

    def _go_switch_destroy(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        cur = self._m_g.get(m, 0)
        self._go_destroy(ts, m, a)
        self._unblock(a[0], ts, cur)
        self._go_start(ts, m, a)

    def _go_status(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        g, mid, status = a[0], a[1], a[2]
        if status == _RUNNING:
            self._m_g[m] = g
        elif status == _SYSCALL:
            self._m_g[mid] = g
            if g not in self._syscall:
                self._syscall[g] = (ts, False)
        elif status == _WAITING:
            if g not in self._parked:
                self._parked[g] = (ts, "", False)
        elif status == _RUNNABLE:
            p = self._parked.pop(g, None)
            if p is not None:  # we missed its unblock
                self.out.append(ParkInterval(g, p[0], max(p[0], ts), p[1], 0, p[2], False))

    def _syscall_begin(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        g = self._m_g.get(m, 0)
        if g:
            self._syscall[g] = (ts, True)

    def _syscall_done(self, ts: int, m: int, blocked: bool) -> None:
        g = self._m_g.get(m, 0)
        s = self._syscall.pop(g, None) if g else None
        if s is not None:
            self.out.append(SyscallInterval(g, s[0], max(s[0], ts), blocked, s[1], True))

    def _syscall_end(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        self._syscall_done(ts, m, False)

    def _syscall_end_blocked(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        self._syscall_done(ts, m, True)
        self._m_g[m] = 0  # runnable again, but must wait for a P

    # -- GC and stop-the-world ------------------------------------------------------------

    def _stw_begin(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        self._stw = (self.strings.get(a[0], ""), self._m_g.get(m, 0), ts, True)

    def _stw_end(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        s = self._stw
        if s is None:
            s = ("", self._m_g.get(m, 0), self._start_ns(), False)
        self._stw = None
        self.out.append(STWInterval(s[0], s[1], s[2], max(s[2], ts), s[3], True))

    def _gc_active(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        if self._gc is None:
            self._gc = (a[0], ts, False)

    def _gc_begin(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        self._gc = (a[0], ts, True)

    def _gc_end(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        s = self._gc or (a[0], self._start_ns(), False)
        self._gc = None
        self.out.append(GCInterval(s[0], s[1], max(s[1], ts), s[2], True))

    def _assist_active(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        if a[0] not in self._assist:
            self._assist[a[0]] = (ts, False)

    def _assist_begin(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        g = self._m_g.get(m, 0)
        if g:
            self._assist[g] = (ts, True)

    def _assist_end(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        g = self._m_g.get(m, 0)
        s = self._assist.pop(g, None) if g else None
        if s is not None:
            self.out.append(MarkAssistInterval(g, s[0], max(s[0], ts), s[1], True))

    # -- user annotations -----------------------------------------------------------------

    def _task_begin(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        self._tasks[a[0]] = (a[1], self.strings.get(a[2], ""), self._m_g.get(m, 0), ts, True)

    def _task_end(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        t = self._tasks.pop(a[0], None)
        if t is None:
            t = (0, "", 0, self._start_ns(), False)
        self.out.append(UserTask(a[0], t[0], t[1], t[2], t[3], max(t[3], ts), t[4], True))

    def _region_begin(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        g = self._m_g.get(m, 0)
        self._regions.setdefault(g, []).append((a[0], self.strings.get(a[1], ""), ts, True))

    def _region_end(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        g = self._m_g.get(m, 0)
        name = self.strings.get(a[1], "")
        stack = self._regions.get(g)
        if stack:
            for i in range(len(stack) - 1, -1, -1):
                if stack[i][1] == name:
                    task, _, start, known = stack.pop(i)
                    if not stack:
                        del self._regions[g]
                    self.out.append(UserRegion(g, task, name, start, max(start, ts), known, True))
                    return
        start = self._start_ns()
        self.out.append(UserRegion(g, a[0], name, start, max(start, ts), False, True))

    def _log(self, ts: int, m: int, a: tuple[int, ...]) -> None:
        s = self.strings
        self.out.append(UserLog(self._m_g.get(m, 0), a[0], s.get(a[1], ""), s.get(a[2], ""), ts))
