"""Parser records → pipeline `Event`s: the same kinds the Go runtime uprobes emit.

| record              | Event kind  | goid       | attrs                                 |
|---------------------|-------------|------------|---------------------------------------|
| ParkInterval        | park        | the parked | reason (Go's string), unblocked_by    |
| STWInterval         | gc_stw      | 0 (process-wide) | reason, initiator_goid          |
| MarkAssistInterval  | gc_assist   | the helper | —                                     |
| GCInterval          | gc          | 0          | seq                                   |
| Lineage             | lineage     | parent     | parent_goid, child_goid               |

Intervals cut by the trace window (began before it, or still open at its end) carry
`clipped: True`: their duration is a lower bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from otel_goblock.receivers.gotrace.parser import (
    GCInterval,
    Lineage,
    MarkAssistInterval,
    ParkInterval,
    Record,
    STWInterval,
)

from otel_goblock.pdata import Event

SOURCE = "gotrace"


def to_events(records: Iterable[Record], pid: int, min_park_ns: int = 0) -> Iterator[Event]:
    for r in records:
        if isinstance(r, ParkInterval):
            if r.end_ns - r.start_ns < min_park_ns:
                continue
            attrs: dict = {"reason": r.reason or "unknown", "unblocked_by": r.unblocked_by}
            if not (r.start_known and r.end_known):
                attrs["clipped"] = True
            yield Event("park", pid, 0, r.goid, r.start_ns, r.end_ns, attrs, SOURCE)
        elif isinstance(r, Lineage):
            if r.parent_goid:
                attrs = {"parent_goid": r.parent_goid, "child_goid": r.child_goid}
                yield Event("lineage", pid, 0, r.parent_goid, r.time_ns, r.time_ns, attrs, SOURCE)
        elif isinstance(r, STWInterval):
            attrs = {"reason": r.reason, "initiator_goid": r.goid}
            if not (r.start_known and r.end_known):
                attrs["clipped"] = True
            yield Event("gc_stw", pid, 0, 0, r.start_ns, r.end_ns, attrs, SOURCE)
        elif isinstance(r, MarkAssistInterval):
            attrs = {} if r.start_known and r.end_known else {"clipped": True}
            yield Event("gc_assist", pid, 0, r.goid, r.start_ns, r.end_ns, attrs, SOURCE)
        elif isinstance(r, GCInterval):
            attrs = {"seq": r.seq}
            if not (r.start_known and r.end_known):
                attrs["clipped"] = True
            yield Event("gc", pid, 0, 0, r.start_ns, r.end_ns, attrs, SOURCE)
