"""Episodes no span claims: a process without OTel, or waits outside any span.

Judged once they ended `unjoined_after` ago (spans arrive late: SDKs batch their
exports). With `unjoined: emit` each leaves as the root span of a trace of its own,
under a resource naming the process, so an uninstrumented Go process shows its blocking
in Jaeger too; with `drop` they are only counted.
"""

from __future__ import annotations

import os
import random
import struct

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otel_goblock.processors.goblock.breakdown import Seg
from otel_goblock.processors.goblock.join import fill_episode, new_span_id, put
from otel_goblock.processors.goblock.timeline import (
    _CLAIM,
    _REC,
    _REC_SIZE,
    Candidates,
    ProcTimeline,
    Timelines,
)

SCOPE_NAME = "otel-goblock/goblock"
_rand = random.Random()
_unpack_claim = _CLAIM.unpack
_GOID = struct.Struct("<q")
_lget = list.__getitem__


def collect(tl: ProcTimeline, cutoff: int, prefer: int) -> list[Seg]:
    """Unclaimed episodes of `tl` among the candidates that started before `cutoff`
    (the timeline keeps them at ingest: parks with a known cause — idle runtime
    goroutines such as "GC worker (idle)" are not waits of the program —, syscalls of
    known goroutines, GC assist and stop-the-world, flow-control waits ≥ min_episode)."""
    cands = tl.candidates
    out, taken = _unclaimed(tl, cands, cutoff, prefer)
    cands.consumed(taken)
    tl.forget_claims(cutoff)
    return out


def _unclaimed(
    tl: ProcTimeline, cands: Candidates, cutoff: int, prefer: int
) -> tuple[list[Seg], int]:
    """(the unclaimed candidates from the front that started before `cutoff`, ingest
    order: it stops at the first later one; how many it looked at). One pass over the
    packed records: a claimed wait (nearly all of them) becomes no tuple. Its views of
    the packed columns die with it, before Candidates.consumed resizes them."""
    out: list[Seg] = []
    append = out.append
    arb = tl.arb  # the kinds (of PARK, GC_ASSIST, GC_STW) more than one source reported
    claims = tl.claims
    union = tl.union
    recs = cands.recs
    head = i = cands.head
    n = len(recs)
    if i >= n:
        return out, 0
    rows = _REC.iter_unpack(memoryview(recs.data)[i * _REC_SIZE : n * _REC_SIZE])
    goids = _GOID.iter_unpack(memoryview(cands.goids)[i * 8 : n * 8])
    for (s, e, m), (goid,) in zip(rows, goids, strict=True):
        if s >= cutoff:
            break
        i += 1
        if arb and (m >> 4) & 3 != prefer and m & 15 in arb:
            continue
        if goid:  # tl.claimed(goid, s, e), inlined: most goroutines have one claim
            lst = claims.get(goid)
            if lst is not None:
                if type(lst) is bytes:
                    a, b = _unpack_claim(lst)
                    if a < e and s < b:
                        continue
                elif lst.overlaps(s, e):
                    continue
        elif union.overlaps(s, e):  # goid 0 (stop-the-world): any span of the process
            continue
        append((s, e, m & 15, _lget(recs, i - 1), goid, m >> 8))
    return out, i - head


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
