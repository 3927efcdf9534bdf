"""A streaming parser of Go's execution trace format (runtime/trace, `go tool trace`).

Reads the generation-based wire format written by Go 1.22 through 1.27 (header versions
go 1.22, 1.23, 1.25, 1.26) and turns it into high-level records: goroutine park intervals
with Go's block reason, syscalls, GC / stop-the-world / mark-assist ranges, goroutine
lineage, and runtime/trace user tasks, regions and logs.

    from otel_goblock.receivers.gotrace.parser import parse_trace, ParkInterval
    for rec in parse_trace("app.trace"):
        if isinstance(rec, ParkInterval):
            print(rec.goid, rec.reason, rec.end_ns - rec.start_ns)
"""

from .errors import TraceParseError, UnsupportedTraceVersion
from .generation import Frame, Generation
from .reader import TraceReader, parse_trace
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
from .spec import SUPPORTED_VERSIONS

__all__ = [
    "SUPPORTED_VERSIONS",
    "Frame",
    "GCInterval",
    "Generation",
    "Lineage",
    "MarkAssistInterval",
    "ParkInterval",
    "Record",
    "STWInterval",
    "SyscallInterval",
    "TraceParseError",
    "TraceReader",
    "UnsupportedTraceVersion",
    "UserLog",
    "UserRegion",
    "UserTask",
    "parse_trace",
]
