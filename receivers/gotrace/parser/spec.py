"""The event table of Go's execution trace wire format (Go 1.22+), per version.

Transcribed from Go's `src/internal/trace/tracev2/events.go` (Go 1.26; Go 1.27.3 ships the
same table) and `src/internal/trace/version/version.go`: every version's table is a prefix
of the latest one (Go 1.22 ends at UserLog, 1.23 at ExperimentalBatch, 1.25 at
ClockSnapshot, 1.26 adds EndOfGeneration), and the event numbering never changed.
`tests/gotrace/test_spec.py` re-reads Go's source and checks this transcription.

`ARGS[typ]` is the argument list after the type byte; timed events start with "dt", the
timestamp delta from the previous event of the same batch.
"""

from __future__ import annotations

from enum import IntEnum


class Ev(IntEnum):
    """Wire event types (tracev2.EventType)."""

    NONE = 0
    EVENT_BATCH = 1
    STACKS = 2
    STACK = 3
    STRINGS = 4
    STRING = 5
    CPU_SAMPLES = 6
    CPU_SAMPLE = 7
    FREQUENCY = 8
    PROCS_CHANGE = 9
    PROC_START = 10
    PROC_STOP = 11
    PROC_STEAL = 12
    PROC_STATUS = 13
    GO_CREATE = 14
    GO_CREATE_SYSCALL = 15
    GO_START = 16
    GO_DESTROY = 17
    GO_DESTROY_SYSCALL = 18
    GO_STOP = 19
    GO_BLOCK = 20
    GO_UNBLOCK = 21
    GO_SYSCALL_BEGIN = 22
    GO_SYSCALL_END = 23
    GO_SYSCALL_END_BLOCKED = 24
    GO_STATUS = 25
    STW_BEGIN = 26
    STW_END = 27
    GC_ACTIVE = 28
    GC_BEGIN = 29
    GC_END = 30
    GC_SWEEP_ACTIVE = 31
    GC_SWEEP_BEGIN = 32
    GC_SWEEP_END = 33
    GC_MARK_ASSIST_ACTIVE = 34
    GC_MARK_ASSIST_BEGIN = 35
    GC_MARK_ASSIST_END = 36
    HEAP_ALLOC = 37
    HEAP_GOAL = 38
    GO_LABEL = 39
    USER_TASK_BEGIN = 40
    USER_TASK_END = 41
    USER_REGION_BEGIN = 42
    USER_REGION_END = 43
    USER_LOG = 44
    GO_SWITCH = 45  # Go 1.23+
    GO_SWITCH_DESTROY = 46
    GO_CREATE_BLOCKED = 47
    GO_STATUS_STACK = 48
    EXPERIMENTAL_BATCH = 49
    SYNC = 50  # Go 1.25+
    CLOCK_SNAPSHOT = 51
    END_OF_GENERATION = 52  # Go 1.26+


# (name, args, timed). Names are Go's, so text dumps (`go tool trace -d=wire`) compare 1:1.
_SPECS: dict[int, tuple[str, tuple[str, ...], bool]] = {
    Ev.EVENT_BATCH: ("EventBatch", ("gen", "m", "time", "size"), False),
    Ev.STACKS: ("Stacks", (), False),
    Ev.STACK: ("Stack", ("id", "nframes"), False),
    Ev.STRINGS: ("Strings", (), False),
    Ev.STRING: ("String", ("id",), False),
    Ev.CPU_SAMPLES: ("CPUSamples", (), False),
    Ev.CPU_SAMPLE: ("CPUSample", ("time", "m", "p", "g", "stack"), False),
    Ev.FREQUENCY: ("Frequency", ("freq",), False),
    Ev.PROCS_CHANGE: ("ProcsChange", ("dt", "procs_value", "stack"), True),
    Ev.PROC_START: ("ProcStart", ("dt", "p", "p_seq"), True),
    Ev.PROC_STOP: ("ProcStop", ("dt",), True),
    Ev.PROC_STEAL: ("ProcSteal", ("dt", "p", "p_seq", "m"), True),
    Ev.PROC_STATUS: ("ProcStatus", ("dt", "p", "pstatus"), True),
    Ev.GO_CREATE: ("GoCreate", ("dt", "new_g", "new_stack", "stack"), True),
    Ev.GO_CREATE_SYSCALL: ("GoCreateSyscall", ("dt", "new_g"), True),
    Ev.GO_START: ("GoStart", ("dt", "g", "g_seq"), True),
    Ev.GO_DESTROY: ("GoDestroy", ("dt",), True),
    Ev.GO_DESTROY_SYSCALL: ("GoDestroySyscall", ("dt",), True),
    Ev.GO_STOP: ("GoStop", ("dt", "reason_string", "stack"), True),
    Ev.GO_BLOCK: ("GoBlock", ("dt", "reason_string", "stack"), True),
    Ev.GO_UNBLOCK: ("GoUnblock", ("dt", "g", "g_seq", "stack"), True),
    Ev.GO_SYSCALL_BEGIN: ("GoSyscallBegin", ("dt", "p_seq", "stack"), True),
    Ev.GO_SYSCALL_END: ("GoSyscallEnd", ("dt",), True),
    Ev.GO_SYSCALL_END_BLOCKED: ("GoSyscallEndBlocked", ("dt",), True),
    Ev.GO_STATUS: ("GoStatus", ("dt", "g", "m", "gstatus"), True),
    Ev.STW_BEGIN: ("STWBegin", ("dt", "kind_string", "stack"), True),
    Ev.STW_END: ("STWEnd", ("dt",), True),
    Ev.GC_ACTIVE: ("GCActive", ("dt", "gc_seq"), True),
    Ev.GC_BEGIN: ("GCBegin", ("dt", "gc_seq", "stack"), True),
    Ev.GC_END: ("GCEnd", ("dt", "gc_seq"), True),
    Ev.GC_SWEEP_ACTIVE: ("GCSweepActive", ("dt", "p"), True),
    Ev.GC_SWEEP_BEGIN: ("GCSweepBegin", ("dt", "stack"), True),
    Ev.GC_SWEEP_END: ("GCSweepEnd", ("dt", "swept_value", "reclaimed_value"), True),
    Ev.GC_MARK_ASSIST_ACTIVE: ("GCMarkAssistActive", ("dt", "g"), True),
    Ev.GC_MARK_ASSIST_BEGIN: ("GCMarkAssistBegin", ("dt", "stack"), True),
    Ev.GC_MARK_ASSIST_END: ("GCMarkAssistEnd", ("dt",), True),
    Ev.HEAP_ALLOC: ("HeapAlloc", ("dt", "heapalloc_value"), True),
    Ev.HEAP_GOAL: ("HeapGoal", ("dt", "heapgoal_value"), True),
    Ev.GO_LABEL: ("GoLabel", ("dt", "label_string"), True),
    Ev.USER_TASK_BEGIN: (
        "UserTaskBegin",
        ("dt", "task", "parent_task", "name_string", "stack"),
        True,
    ),
    Ev.USER_TASK_END: ("UserTaskEnd", ("dt", "task", "stack"), True),
    Ev.USER_REGION_BEGIN: ("UserRegionBegin", ("dt", "task", "name_string", "stack"), True),
    Ev.USER_REGION_END: ("UserRegionEnd", ("dt", "task", "name_string", "stack"), True),
    Ev.USER_LOG: ("UserLog", ("dt", "task", "key_string", "value_string", "stack"), True),
    Ev.GO_SWITCH: ("GoSwitch", ("dt", "g", "g_seq"), True),
    Ev.GO_SWITCH_DESTROY: ("GoSwitchDestroy", ("dt", "g", "g_seq"), True),
    Ev.GO_CREATE_BLOCKED: ("GoCreateBlocked", ("dt", "new_g", "new_stack", "stack"), True),
    Ev.GO_STATUS_STACK: ("GoStatusStack", ("dt", "g", "m", "gstatus", "stack"), True),
    Ev.EXPERIMENTAL_BATCH: ("ExperimentalBatch", ("exp", "gen", "m", "time"), False),
    Ev.SYNC: ("Sync", (), False),
    Ev.CLOCK_SNAPSHOT: ("ClockSnapshot", ("dt", "mono", "sec", "nsec"), True),
    Ev.END_OF_GENERATION: ("EndOfGeneration", (), False),
}

# Experimental events (AllocFree experiment, Go 1.23+). They live in experimental batches,
# which this parser skips whole, but the table keeps them so a text dump can name them.
_EXPERIMENTAL: dict[int, tuple[str, tuple[str, ...], bool]] = {
    128: ("Span", ("dt", "id", "npages_value", "kindclass"), True),
    129: ("SpanAlloc", ("dt", "id", "npages_value", "kindclass"), True),
    130: ("SpanFree", ("dt", "id"), True),
    131: ("HeapObject", ("dt", "id", "type"), True),
    132: ("HeapObjectAlloc", ("dt", "id", "type"), True),
    133: ("HeapObjectFree", ("dt", "id"), True),
    134: ("GoroutineStack", ("dt", "id", "order"), True),
    135: ("GoroutineStackAlloc", ("dt", "id", "order"), True),
    136: ("GoroutineStackFree", ("dt", "id"), True),
}

#: Wire-format versions read by this parser: header minor version → last event type.
VERSION_LAST_EVENT: dict[int, int] = {
    22: Ev.USER_LOG,
    23: Ev.EXPERIMENTAL_BATCH,
    25: Ev.CLOCK_SNAPSHOT,
    26: Ev.END_OF_GENERATION,
}
SUPPORTED_VERSIONS: tuple[str, ...] = tuple(f"go 1.{v}" for v in VERSION_LAST_EVENT)


class VersionSpec:
    """The per-version lookup tables the decoder's inner loop indexes by type byte."""

    __slots__ = ("names", "nargs", "version")

    def __init__(self, version: int) -> None:
        self.version = version
        last = VERSION_LAST_EVENT[version]
        #: number of varint arguments of each *timed* event (including dt); 0 = not valid
        #: inside an event batch of this version.
        self.nargs: list[int] = [0] * 256
        self.names: dict[int, str] = {}
        table = dict(_SPECS)
        if version >= 23:
            table.update(_EXPERIMENTAL)
        for typ, (name, args, timed) in table.items():
            if typ > last and typ < 128:
                continue
            self.names[typ] = name
            if timed:
                self.nargs[typ] = len(args)


def spec_args(typ: int) -> tuple[str, ...]:
    """Argument names of an event type (for the text format and diagnostics)."""
    entry = _SPECS.get(typ) or _EXPERIMENTAL.get(typ)
    return entry[1] if entry else ()


def spec_name(typ: int) -> str:
    entry = _SPECS.get(typ) or _EXPERIMENTAL.get(typ)
    return entry[0] if entry else f"Invalid({typ})"


def name_to_type() -> dict[str, int]:
    out = {name: typ for typ, (name, _, _) in _SPECS.items()}
    out.update({name: typ for typ, (name, _, _) in _EXPERIMENTAL.items()})
    return out
