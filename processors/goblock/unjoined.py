"""Episodes no span claims: a process without OTel, or waits outside any span.

Judged once they ended `unjoined_after` ago (spans arrive late: SDKs batch their
exports). With `unjoined: emit` each leaves as the root span of a trace of its own,
under a resource naming the process, so an uninstrumented Go process shows its blocking
in Jaeger too; with `drop` they are only counted.
"""

from __future__ import annotations

import os
import random
from bisect import bisect_left
from operator import itemgetter

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otel_goblock.processors.goblock.breakdown import Seg
from otel_goblock.processors.goblock.categories import (
    GC_ASSIST,
    GC_STW,
    GRPC_FC,
    PARK,
    PARK_CAUSE,
    SYSCALL,
)
from otel_goblock.processors.goblock.join import fill_episode, new_span_id, put
from otel_goblock.processors.goblock.timeline import ProcTimeline, Timelines

SCOPE_NAME = "otel-goblock/goblock"
_START = itemgetter(0)
_rand = random.Random()


def _judged(rec: tuple, min_ns: int) -> bool:
    """Waits worth a span of their own: known park reasons (idle runtime goroutines, e.g.
    "GC worker (idle)", are not waits of the program), syscalls of a known goroutine,
    GC assist, flow control."""
    code = rec[2]
    if rec[1] - rec[0] < min_ns:
        return False
    if code == PARK:
        return rec[3] in PARK_CAUSE
    return code in (SYSCALL, GC_ASSIST, GRPC_FC)


def collect(tl: ProcTimeline, cutoff: int, min_ns: int, prefer: int) -> list[Seg]:
    """Unclaimed episodes of `tl` that started in [judged_until, cutoff); advances the
    judged mark and forgets the claims it no longer needs."""
    lo = tl.judged_until
    if cutoff <= lo:
        return []
    arbitrate = len(tl.park_sources) > 1
    out: list[Seg] = []
    for goid, recs in tl.by_goid.items():
        recs = tl._sorted(0, goid, recs)
        i = bisect_left(recs, lo, key=_START)
        j = bisect_left(recs, cutoff, i, key=_START)
        for r in recs[i:j]:
            if not _judged(r, min_ns):
                continue
            if arbitrate and r[2] in (PARK, GC_ASSIST) and r[5] != prefer:
                continue
            if not tl.claimed(goid, r[0], r[1]):
                out.append((r[0], r[1], r[2], r[3], goid, r[4]))
    for r in tl.stw:
        if lo <= r[0] < cutoff and r[1] - r[0] >= min_ns:
            if arbitrate and r[5] != prefer:
                continue
            if not tl.claimed(0, r[0], r[1]):
                out.append((r[0], r[1], GC_STW, r[3], 0, r[4]))
    tl.judged_until = cutoff
    tl.forget_claims(cutoff)
    return out


def executable(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def service_name(pid: int, exe: str, names: dict[str, str]) -> str:
    base = os.path.basename(exe) if exe else ""
    return names.get(str(pid)) or (names.get(base) if base else None) or base or f"pid {pid}"


def build_request(
    timelines: Timelines, episodes: dict[int, list[Seg]], names: dict[str, str]
) -> tuple[ExportTraceServiceRequest, int]:
    """One ResourceSpans per process, one root span (own trace) per episode."""
    req = ExportTraceServiceRequest()
    n = 0
    for pid, segs in episodes.items():
        tl = timelines.procs[pid]
        if tl.exe is None:
            tl.exe = executable(pid)
        rs = req.resource_spans.add()
        attrs = rs.resource.attributes
        put(attrs, "service.name", service_name(pid, tl.exe, names))
        put(attrs, "process.pid", pid)
        if tl.exe:
            put(attrs, "process.executable.path", tl.exe)
        ss = rs.scope_spans.add()
        ss.scope.name = SCOPE_NAME
        for seg in segs:
            span: Span = ss.spans.add()
            span.trace_id = _rand.getrandbits(128).to_bytes(16, "big")
            span.span_id = new_span_id()
            fill_episode(span, tl, seg)
            put(span.attributes, "goblock.unjoined", True)
            n += 1
    return req, n
