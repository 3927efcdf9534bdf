"""High-level records the parser emits: what the join needs, not the raw event soup.

Times are ns: wall clock (CLOCK_REALTIME) when the generation carries a ClockSnapshot
(Go 1.25+) or the caller supplied an offset, else Go's trace clock (`TraceReader.clock`
says which). `start_known` / `end_known` are False when an interval was already open when
the trace began (its start is the trace's first timestamp) or still open when it ended
(its end is the trace's last timestamp).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ParkInterval:
    """A goroutine blocked (Running → Waiting) until it was made runnable again."""

    goid: int
    start_ns: int
    end_ns: int
    reason: str  # Go's block reason string: "sleep", "chan receive", "sync", "network", …
    unblocked_by: int = 0  # goid that made it runnable (0: the runtime / unknown)
    start_known: bool = True
    end_known: bool = True


@dataclass(slots=True)
class SyscallInterval:
    """A goroutine in a system call (GoSyscallBegin → GoSyscallEnd[Blocked])."""

    goid: int
    start_ns: int
    end_ns: int
    blocked: bool  # the syscall lost its P (GoSyscallEndBlocked): it really blocked
    start_known: bool = True
    end_known: bool = True


@dataclass(slots=True)
class GCInterval:
    """A garbage collection cycle (GCBegin → GCEnd)."""

    seq: int
    start_ns: int
    end_ns: int
    start_known: bool = True
    end_known: bool = True


@dataclass(slots=True)
class STWInterval:
    """A stop-the-world pause (STWBegin → STWEnd); reason is Go's, e.g. "GC mark termination"."""

    reason: str
    goid: int  # goroutine that stopped the world
    start_ns: int
    end_ns: int
    start_known: bool = True
    end_known: bool = True


@dataclass(slots=True)
class MarkAssistInterval:
    """A goroutine doing GC mark assist work (GCMarkAssistBegin → End) instead of its own."""

    goid: int
    start_ns: int
    end_ns: int
    start_known: bool = True
    end_known: bool = True


@dataclass(slots=True)
class Lineage:
    """Goroutine creation: parent (0 when created outside a running goroutine) → child."""

    parent_goid: int
    child_goid: int
    time_ns: int


@dataclass(slots=True)
class UserTask:
    """A runtime/trace task (trace.NewTask … task.End())."""

    task_id: int
    parent_task_id: int
    name: str
    goid: int  # goroutine that began it (0 when the begin is not in the trace)
    start_ns: int
    end_ns: int
    start_known: bool = True
    end_known: bool = True


@dataclass(slots=True)
class UserRegion:
    """A runtime/trace region on one goroutine (trace.WithRegion / StartRegion)."""

    goid: int
    task_id: int
    name: str
    start_ns: int
    end_ns: int
    start_known: bool = True
    end_known: bool = True


@dataclass(slots=True)
class UserLog:
    """A trace.Log(ctx, category, message) call."""

    goid: int
    task_id: int
    category: str
    message: str
    time_ns: int


Record = (
    ParkInterval
    | SyscallInterval
    | GCInterval
    | STWInterval
    | MarkAssistInterval
    | Lineage
    | UserTask
    | UserRegion
    | UserLog
)
