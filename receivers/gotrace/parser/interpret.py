"""From wire events to high-level records: the goroutine/GC state machine.

Which goroutine an event belongs to is not in the wire event: it is whatever goroutine
the emitting M (thread) is running. The decoder (events.py) resolves that while reading
each M's batches in order and hands on events that carry their goroutine. Per-M order is
exact (one M writes its events sequentially); across Ms the order is by timestamp, so the
machine tolerates the rare clock inversion instead of failing on it:

- a GoUnblock that arrives before the GoBlock it answers is remembered for the rest of
  the generation and closes the park as soon as the GoBlock shows up (zero-length park);
- a GoSwitch to a goroutine we still think is parked closes the park at the switch.

(A GoStart never reaches this machine: the decoder resolves it per M. A GoUnblock
stamped after the GoStart it caused, by a skewed clock, still ends the park.)

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

_RUNNABLE, _RUNNING, _SYSCALL, _WAITING = 1, 2, 3, 4  # tracev2.GoStatus


class Interpreter:
    """Consumes time-ordered raw events; appends finished records to `out`.

    State lives across generations (a goroutine can stay parked for many); only the
    string table is swapped per generation (string ids are per generation).
    """

    def __init__(self) -> None:
        self.out: list[Record] = []
        self.strings: dict[int, str] = {0: ""}
        self.first_ns: int | None = None
        self.last_ns = 0
        self._parked: dict[int, tuple[int, str, bool]] = {}  # goid → (start, reason, known)
        self._early_unblock: dict[int, tuple[int, int]] = {}  # goid → (time, unblocker)
        self._syscall: dict[int, tuple[int, bool]] = {}  # goid → (start, known)
        self._assist: dict[int, tuple[int, bool]] = {}
        self._gc: tuple[int, int, bool] | None = None  # (seq, start, known)
        self._stw: tuple[str, int, int, bool] | None = None  # (reason, goid, start, known)
        self._tasks: dict[int, tuple[int, str, int, int, bool]] = {}
        self._regions: dict[int, list[tuple[int, str, int, bool]]] = {}
        # handler(time, goroutine on the event's M, (a1, a2, a3)); see events.py
        h: list[Callable[[int, int, tuple[int, ...]], None] | None] = [None] * 256
        h[Ev.GO_CREATE] = self._go_create
        h[Ev.GO_CREATE_BLOCKED] = self._go_create_blocked
        h[Ev.GO_DESTROY] = self._go_destroy
        h[Ev.GO_DESTROY_SYSCALL] = self._go_destroy
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

        The two events that make up most of what the decoder hands on (GoUnblock,
        GoBlock; GoStart is resolved per M while decoding) are handled inline, to save a
        call each.
        """
        handlers = self._handlers
        last = self.last_ns
        if self.first_ns is None and chunk:
            self.first_ns = chunk[0][0]
        parked = self._parked
        early = self._early_unblock
        strings = self.strings
        append = self.out.append
        park = ParkInterval
        go_block, go_unblock = int(Ev.GO_BLOCK), int(Ev.GO_UNBLOCK)
        for ts, typ, g, x in chunk:
            # As Go's reader does: times strictly increase in the merged order, so ties
            # and the rare cross-CPU inversion become +1 ns steps (and match Go's times).
            if ts <= last:
                ts = last + 1
            last = ts
            # (ts > every time seen before, so a park's end needs no max() with its start)
            if typ == go_unblock:  # g: the unblocked goroutine, x: the unblocker
                p = parked.pop(g, None)
                if p is None:
                    early[g] = (ts, x)
                else:
                    start, reason, known = p
                    append(park(g, start, ts, reason, x, known, True))
            elif typ == go_block:  # x: the reason's string id
                if g:
                    try:
                        reason = strings[x]
                    except KeyError:  # an id the generation did not define
                        reason = ""
                    if early and g in early:
                        self._park(g, ts, reason)
                    else:
                        parked[g] = (ts, reason, True)
            else:
                h = handlers[typ]
                if h is not None:
                    self.last_ns = ts
                    h(ts, g, x)
        self.last_ns = last

    def finish(self, last_ns: int = 0) -> None:
        """Emit every interval still open, ending at the last timestamp of the trace
        (`last_ns`: the last event decoded, handed on or not)."""
        end = max(self.last_ns, last_ns)
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

    def _go_create(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        self.out.append(Lineage(g, a[0], ts))

    def _go_create_blocked(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        self.out.append(Lineage(g, a[0], ts))
        self._parked[a[0]] = (ts, "", True)

    def _go_start(self, ts: int, g: int, a: tuple[int, ...] = ()) -> None:
        self._early_unblock.pop(g, None)
        p = self._parked.pop(g, None)
        if p is not None:  # the unblock came out of order (or was lost): close at the start
            self.out.append(ParkInterval(g, p[0], max(p[0], ts), p[1], 0, p[2], True))

    def _go_destroy(self, ts: int, g: int, a: tuple[int, ...]) -> None:
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

    def _unblock(self, g: int, ts: int, by: int) -> None:
        p = self._parked.pop(g, None)
        if p is None:
            self._early_unblock[g] = (ts, by)
        else:
            self.out.append(ParkInterval(g, p[0], max(p[0], ts), p[1], by, p[2], True))

    def _go_switch(self, ts: int, cur: int, a: tuple[int, ...]) -> None:
        # Coroutine switch (iter.Pull): current goroutine blocks (Go gives no reason),
        # the named one is unblocked and starts on this M.
        if cur:
            self._park(cur, ts, "")
        self._unblock(a[0], ts, cur)
        self._go_start(ts, a[0])

    def _go_switch_destroy(self, ts: int, cur: int, a: tuple[int, ...]) -> None:
        self._go_destroy(ts, cur, a)
        self._unblock(a[0], ts, cur)
        self._go_start(ts, a[0])

    def _go_status(self, ts: int, _on_m: int, a: tuple[int, ...]) -> None:
        g, status = a[0], a[2]
        if status == _SYSCALL:
            if g not in self._syscall:
                self._syscall[g] = (ts, False)
        elif status == _WAITING:
            if g not in self._parked:
                self._parked[g] = (ts, "", False)
        elif status == _RUNNABLE:
            p = self._parked.pop(g, None)
            if p is not None:  # we missed its unblock
                self.out.append(ParkInterval(g, p[0], max(p[0], ts), p[1], 0, p[2], False))

    def _syscall_begin(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        if g:
            self._syscall[g] = (ts, True)

    def _syscall_done(self, ts: int, g: int, blocked: bool) -> None:
        s = self._syscall.pop(g, None) if g else None
        if s is not None:
            self.out.append(SyscallInterval(g, s[0], max(s[0], ts), blocked, s[1], True))

    def _syscall_end(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        self._syscall_done(ts, g, False)

    def _syscall_end_blocked(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        self._syscall_done(ts, g, True)

    # -- GC and stop-the-world ------------------------------------------------------------

    def _stw_begin(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        self._stw = (self.strings.get(a[0], ""), g, ts, True)

    def _stw_end(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        s = self._stw
        if s is None:
            s = ("", g, self._start_ns(), False)
        self._stw = None
        self.out.append(STWInterval(s[0], s[1], s[2], max(s[2], ts), s[3], True))

    def _gc_active(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        if self._gc is None:
            self._gc = (a[0], ts, False)

    def _gc_begin(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        self._gc = (a[0], ts, True)

    def _gc_end(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        s = self._gc or (a[0], self._start_ns(), False)
        self._gc = None
        self.out.append(GCInterval(s[0], s[1], max(s[1], ts), s[2], True))

    def _assist_active(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        if a[0] not in self._assist:
            self._assist[a[0]] = (ts, False)

    def _assist_begin(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        if g:
            self._assist[g] = (ts, True)

    def _assist_end(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        s = self._assist.pop(g, None) if g else None
        if s is not None:
            self.out.append(MarkAssistInterval(g, s[0], max(s[0], ts), s[1], True))

    # -- user annotations -----------------------------------------------------------------

    def _task_begin(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        self._tasks[a[0]] = (a[1], self.strings.get(a[2], ""), g, ts, True)

    def _task_end(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        t = self._tasks.pop(a[0], None)
        if t is None:
            t = (0, "", 0, self._start_ns(), False)
        self.out.append(UserTask(a[0], t[0], t[1], t[2], t[3], max(t[3], ts), t[4], True))

    def _region_begin(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        self._regions.setdefault(g, []).append((a[0], self.strings.get(a[1], ""), ts, True))

    def _region_end(self, ts: int, g: int, a: tuple[int, ...]) -> None:
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

    def _log(self, ts: int, g: int, a: tuple[int, ...]) -> None:
        s = self.strings
        self.out.append(UserLog(g, a[0], s.get(a[1], ""), s.get(a[2], ""), ts))
