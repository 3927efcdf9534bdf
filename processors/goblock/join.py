"""Joining one span to its goroutine and writing the answer into it.

Order of the join (DESIGN §3): the span marker (trace id + span id → goid, from the
uprobe on the SDK's span End), else the span's own `goblock.goroutine.id` attribute, else
process-wide events only. The span is edited in place (the caller owns a private copy);
episode child spans are appended to the same scope.
"""

from __future__ import annotations

import random
import struct
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otel_goblock.processors.goblock.breakdown import (
    FIXED_CATEGORIES,
    Analysis,
    Breakdown,
    Seg,
    analyze_many,
    category,
    cause_of,
    describe,
    episode_peer,
    fmt_ms,
    summarize,
)
from otel_goblock.processors.goblock.categories import (
    GC_ASSIST,
    GC_STW,
    GRPC_FC,
    PARK,
    PARK_CAUSE,
    RUNQUEUE,
    SYSCALL,
    conn_key,
    peer_of,
    syscall_class,
)
from otel_goblock.processors.goblock.encode import (
    EVENT_ATTR,
    attr,
    attr_double,
    attr_int,
    attr_str,
    span_entry,
    span_event,
)
from otel_goblock.processors.goblock.grpc_diagnosis import (
    CLOSE_SLACK_NS,
    GrpcDiagnosis,
    diagnose,
)
from otel_goblock.processors.goblock.timeline import ProcTimeline, Timelines

from otel_goblock.pdata import Event

GOID_ATTR = "goblock.goroutine.id"
GRPC_ATTRS = {"rpc.system": "grpc"}  # what diagnose() reads of a span's attributes
# the always-present categories, encoded with one struct.pack per span
_FIXED_PREFIXES = [attr_double(f"goblock.{c}.ms", 0.0)[:-8] for c in FIXED_CATEGORIES]
_FIXED_STRUCT = struct.Struct("<" + "".join(f"{len(p)}sd" for p in _FIXED_PREFIXES))
_FIXED_SET = frozenset(FIXED_CATEGORIES)


_pack_d = struct.Struct("<d").pack
# encoded `goblock.<category>.ms` attributes up to their double value, per category
_cat_prefix: dict[str, bytes] = {}


def _category_prefix(cat: str) -> bytes:
    if len(_cat_prefix) >= 4096:  # park reasons recur; see breakdown._MEMO_MAX
        _cat_prefix.clear()
    got = _cat_prefix[cat] = attr_double(f"goblock.{cat}.ms", 0.0)[:-8]
    return got


# encoded `goblock.cause` and `goblock.join` attributes: a fixed vocabulary each
_CAUSE_ATTRS: dict[str, bytes] = {}
_JOIN_ATTRS: dict[str, bytes] = {}


def _const_attr(cache: dict[str, bytes], key: str, value: str) -> bytes:
    if len(cache) >= 256:  # the vocabularies are small: only a bug could grow it
        cache.clear()
    got = cache[value] = attr_str(key, value)
    return got


MAX_SPAN_EVENTS = 32
_NO_SOCKETS: set[str] = set()  # never written to: the usual case shares it
_rand = random.Random()


def _utf8(text: str) -> str:
    """`text` as protobuf takes it: a path with undecodable bytes (surrogate escapes)
    gets them replaced, as encode.attr_str writes them, instead of failing the span."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def put(attrs: Any, key: str, value: object) -> None:
    """Append one attribute (repeated KeyValue) without building a Python KeyValue first."""
    kv = attrs.add()
    kv.key = _utf8(key)
    if isinstance(value, str):
        kv.value.string_value = _utf8(value)
    elif isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.double_value = float(value)  # type: ignore[arg-type]


def span_goroutine_attr(span: Span) -> int:
    for kv in span.attributes:
        if kv.key == GOID_ATTR:
            v = kv.value
            if v.HasField("int_value"):
                return v.int_value
            try:
                return int(v.string_value or 0)
            except ValueError:
                return 0
    return 0


def episode_name(seg: Seg) -> str:
    code, detail = seg[2], seg[3]
    if code == PARK:
        return f"goblock: {detail}"
    if code == SYSCALL:
        return f"goblock: syscall {detail[0]}"
    if code == RUNQUEUE:
        return "goblock: runqueue"
    if code == GC_STW:
        return "goblock: GC stop-the-world"
    if code == GC_ASSIST:
        return "goblock: GC mark assist"
    if code == GRPC_FC:
        return "goblock: gRPC flow control"
    return "goblock: off-CPU"


def static_episode_attributes(code: int, detail: Any) -> list[tuple[str, object]]:
    """The attributes an episode's kind and detail alone decide (cached as bytes)."""
    out: list[tuple[str, object]] = [
        ("goblock.cause", cause_of(code, detail) or "unattributed"),
        ("goblock.category", category(code, detail)),
    ]
    if code == PARK:
        out.append(("goblock.wait.reason", detail))
    elif code == SYSCALL:
        name, target = detail
        out.append(("goblock.syscall.name", name))
        if target:
            out.append(("goblock.fd.target", target))
            cls = syscall_class(name, target)
            if cls == "network" and peer_of(target):
                out.append(("goblock.peer.address", peer_of(target)))
            elif cls == "disk":
                out.append(("goblock.file.path", target))
    elif code == GC_STW and detail:
        out.append(("goblock.gc.stw.reason", detail))
    elif code == RUNQUEUE and detail:
        out.append(("goblock.runqueue.after", detail))
    elif code == GRPC_FC:
        for k, v in detail.items():
            if k != "type" and isinstance(v, str | int | float):
                out.append((f"goblock.grpc.{k}", v))
    return out


def episode_attributes(tl: ProcTimeline, seg: Seg) -> list[tuple[str, object]]:
    """Every attribute of an episode span (README: "Episode spans")."""
    code, detail = seg[2], seg[3]
    out = static_episode_attributes(code, detail)
    if seg[4]:
        out.append((GOID_ATTR, seg[4]))
    if code == PARK and PARK_CAUSE.get(detail) == "network":
        peer = episode_peer(tl, seg)
        if peer:
            out.append(("goblock.peer.address", peer[1]))
            out.append(("goblock.syscall.name", peer[0]))
    return out


_static: dict[tuple[int, Any], tuple[bytes, bytes]] = {}


def _static_parts(code: int, detail: Any) -> tuple[bytes, bytes]:
    """(encoded name, encoded static attributes) of an episode kind, cached per
    (kind, detail): the same waits recur span after span."""
    if code == GRPC_FC:  # detail is a dict
        seg = (0, 0, code, detail, 0, 0)
        blob = b"".join(attr(k, v) for k, v in static_episode_attributes(code, detail))
        return episode_name(seg).encode(), blob
    got = _static.get((code, detail))
    if got is None:
        seg = (0, 0, code, detail, 0, 0)
        blob = b"".join(attr(k, v) for k, v in static_episode_attributes(code, detail))
        if len(_static) > 4096:  # recurring kinds: small, see breakdown._MEMO_MAX
            _static.clear()
        got = _static[(code, detail)] = (episode_name(seg).encode(), blob)
    return got


def episode_entry(
    tl: ProcTimeline, seg: Seg, trace_id: bytes, parent: bytes, an: Analysis | None = None
) -> bytes:
    """An episode as an encoded child span (a `ScopeSpans.spans` entry)."""
    code, detail = seg[2], seg[3]
    name, static = _static_parts(code, detail)
    if seg[4]:
        static += goid_attr(seg[4])
    if code == PARK and PARK_CAUSE.get(detail) == "network":
        peer = episode_peer(tl, seg, an)
        if peer:
            static += _peer_attrs(peer)
    return span_entry(trace_id, new_span_id(), parent, name, seg[0], seg[1], static)


_last_goid: list[Any] = [0, b""]


def goid_attr(goid: int) -> bytes:
    """`goblock.goroutine.id` encoded; the last one is kept (a span and its episode spans
    name the same goroutine in turn)."""
    last = _last_goid
    if last[0] != goid:
        last[0], last[1] = goid, attr_int(GOID_ATTR, goid)
    return last[1]  # type: ignore[no-any-return]


_peer_blobs: dict[tuple[str, str], bytes] = {}


def _peer_attrs(peer: tuple[str, str]) -> bytes:
    """A netpoll episode's peer and syscall as attributes, cached per (syscall, peer):
    the same few peers recur (small, see breakdown._MEMO_MAX)."""
    got = _peer_blobs.get(peer)
    if got is None:
        if len(_peer_blobs) >= 4096:
            _peer_blobs.clear()
        got = _peer_blobs[peer] = attr_str("goblock.peer.address", peer[1]) + attr_str(
            "goblock.syscall.name", peer[0]
        )
    return got


def new_span_id() -> bytes:
    """A random non-zero span id (OTLP: all-zero is invalid)."""
    return (_rand.getrandbits(64) or 1).to_bytes(8, "big")


def fill_episode(span: Span, tl: ProcTimeline, seg: Seg) -> None:
    """An episode as a standalone span (unjoined episodes; no parent)."""
    span.name = _utf8(episode_name(seg))
    span.kind = Span.SPAN_KIND_INTERNAL
    span.start_time_unix_nano = seg[0]
    span.end_time_unix_nano = seg[1]
    attrs = span.attributes
    for k, v in episode_attributes(tl, seg):
        put(attrs, k, v)
    put(attrs, "goblock.diagnosis", describe(tl, seg, fmt_ms(seg[1] - seg[0])))


# a GOAWAY during the span explains waits that look like an RPC stuck on its connection
KEEPALIVE_OVERRIDES = frozenset({"network", "channel", "unattributed"})
_RPC_SYSTEM_KEYS = ("rpc.system", "rpc.system.name")


def is_grpc_span(span: Span) -> bool:
    for kv in span.attributes:
        if kv.key in _RPC_SYSTEM_KEYS and kv.value.string_value == "grpc":
            return True
    return False


def _grpc_events(tl: ProcTimeline, an: Analysis, start: int, end: int, prefer: int) -> list[Event]:
    """The process's gRPC transport events as grpc_diagnosis reads them: the flow-control
    waits of the span's goroutines, the instants of the span's window (frames arrive on
    transport goroutines; diagnose() picks the span's side and connection), and any ping
    that names a server's enforcement MinTime. Only these become Event objects: diagnose()
    reads nothing else, and the process may hold thousands of frames."""
    pid = tl.pid
    last = end + CLOSE_SLACK_NS
    out = [
        Event("grpc", pid, 0, g, t, t, a)
        for t, g, kind, a in tl.instants
        if kind == "grpc" and (start <= t <= last or "enforcement_min_time_ms" in a)
    ]
    for g in an.goroutines:
        for r in tl.goroutine(g, start, end, prefer):
            if r[2] == GRPC_FC:
                out.append(Event("grpc", pid, r[4], g, r[0], r[1], r[3]))
    return out


def _grpc(
    span: Span, tl: ProcTimeline, an: Analysis, bd: Breakdown, prefer: int
) -> tuple[GrpcDiagnosis | None, bool]:
    """What grpc-go's transport did to this span (processors/goblock/grpc_diagnosis.py),
    and whether the span is a gRPC span.

    A gRPC span gets the full diagnosis (attributes, http2.goaway / keepalive events,
    cause when gRPC explains it). Any other span that waited on the network or a channel
    while a GOAWAY or keepalive timeout tore a connection down under it — the HTTP
    handler around a failed RPC — gets the keepalive cause and sentence only."""
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    end = max(end, start)
    grpc_span = is_grpc_span(span)
    if not grpc_span and bd.cause not in KEEPALIVE_OVERRIDES:
        return None, False
    events = _grpc_events(tl, an, start, end, prefer)
    if not events:
        return None, grpc_span
    breakdown_ms = {k: v / 1e6 for k, v in bd.ns.items()}
    if grpc_span:
        return diagnose(GRPC_ATTRS, span.kind, start, end, events, None, breakdown_ms), True
    diag = diagnose(GRPC_ATTRS, 0, start, end, events, None, breakdown_ms)
    if diag is None or diag.cause != "grpc_keepalive":
        return None, False
    return GrpcDiagnosis(cause=diag.cause, diagnosis=diag.diagnosis), False


@dataclass(slots=True)
class Joined:
    """A span joined and broken down, not yet written."""

    span: Span
    tl: ProcTimeline
    goid: int
    join: str
    has_attr: bool
    an: Analysis
    bd: Breakdown
    start: int
    end: int
    out: list[bytes]  # where its episode spans go (its scope's)
    order: int
    grpc: GrpcDiagnosis | None = None
    grpc_span: bool = False  # its gRPC frames went in as the diagnosis's events
    trace_id: bytes = b""  # the span's (read once: every read builds a bytes object)
    # what finish() adds to the span, encoded (attributes, then span events): appended to
    # the span's serialized form, or merged into the Span (processor._enrich)
    extra: bytes = b""


class Rivals:
    """The joined spans of one trace in one request, for episode ownership: an episode
    goes to the innermost span covering it (shortest, then first) whose goroutines
    include the one that waited. Sorted by start so a lookup only looks at the spans
    that began just before the episode (sequential siblings do not overlap), never at
    all of them: a trace of thousands of spans on one goroutine stays linear."""

    __slots__ = ("items", "starts")

    def __init__(self, group: list[Joined]) -> None:
        self.items = sorted(group, key=lambda j: j.start)
        self.starts = [j.start for j in self.items]

    def owned_by_inner(self, seg: Seg, j: Joined, mine: tuple[int, int]) -> bool:
        mid = (seg[0] + seg[1]) // 2
        goid = seg[4]
        items = self.items
        k = bisect_right(self.starts, mid) - 1
        looked = 0
        while k >= 0 and looked < 16:
            r = items[k]
            if (
                r is not j
                and mid <= r.end
                and (r.end - r.start, r.order) < mine
                and goid in r.an.goroutines
            ):
                return True
            k -= 1
            looked += 1
        return False


class Joiner:
    """Enriches spans of observed processes from the timelines."""

    def __init__(self, timelines: Timelines, prefer: int, min_episode_ns: int, depth: int) -> None:
        self.timelines = timelines
        self.prefer = prefer
        self.min_episode_ns = min_episode_ns
        self.depth = depth

    def enrich(self, span: Span, tl: ProcTimeline, out: list[bytes]) -> tuple[int, bool]:
        """Edit `span`; its episode spans go to `out` as encoded `ScopeSpans.spans`
        entries (the caller merges them into the scope). Returns (episodes, joined)."""
        j = self.prepare(span, tl, out, 0)
        n = self.finish(j, None)
        span.MergeFromString(j.extra)
        return n, bool(j.goid)

    def prepare(self, span: Span, tl: ProcTimeline, out: list[bytes], order: int) -> Joined:
        """Join and break down one span (nothing written yet)."""
        return self.prepare_scope([span], tl, out, order)[0]

    def prepare_scope(
        self, spans: list[Span], tl: ProcTimeline, out: list[bytes], order: int
    ) -> list[Joined]:
        """Join and break down the spans of one scope (nothing written yet), stage by
        stage over all of them — every span's goroutine, then their records and sweeps
        (analyze_many), then every breakdown — not span by span: the same few functions
        run back to back, and the same answers (the stages only read the timelines; no
        span depends on another here) for ~15 % less CPU per span in-process
        (benchmarks/goblock_join.py's light load; why the interleaved order costs more
        was not pinned down: not the GC). `order`: the first span's place in the request."""
        prefer, depth = self.prefer, self.depth
        markers = tl.markers
        joins = []
        for span in spans:
            trace_id = span.trace_id
            start, end = span.start_time_unix_nano, span.end_time_unix_nano
            if end < start:
                end = start
            marker = tl.marker(trace_id, span.span_id) if markers else None
            has_attr = False
            if marker is not None:
                goid, end_tid = marker
                join = "span_marker"
            else:
                goid = span_goroutine_attr(span)
                end_tid = 0
                has_attr = bool(goid)
                join = "attribute" if goid else "process"
            joins.append((span, trace_id, start, end, goid, join, has_attr, end_tid))
        ans = analyze_many(tl, [(j[4], j[2], j[3], j[7]) for j in joins], prefer, depth)
        min_ep = self.min_episode_ns
        grpc_possible = bool(tl.instants)
        prepared = []
        for (span, trace_id, start, end, goid, join, has_attr, _), an in zip(
            joins, ans, strict=True
        ):
            bd = summarize(tl, an, start, end, bool(goid), min_ep)
            grpc, grpc_span = None, False
            if grpc_possible or "grpc.flow_control" in bd.ns:
                grpc, grpc_span = _grpc(span, tl, an, bd, prefer)
                if grpc is not None and grpc.cause and grpc.diagnosis:
                    before = bd.diagnosis if grpc.cause == "grpc_keepalive" else ""
                    bd.cause = grpc.cause
                    bd.diagnosis = (
                        f"{grpc.diagnosis}; before that: {before}" if before else grpc.diagnosis
                    )
            prepared.append(
                Joined(
                    span, tl, goid, join, has_attr, an, bd, start, end, out, order, grpc,
                    grpc_span, trace_id,
                )
            )  # fmt: skip
            order += 1
        return prepared

    def finish(self, j: Joined, rivals: Rivals | None) -> int:
        """Encode what a prepared span gains into `j.extra` (the span itself is not
        edited: the caller appends or merges it); returns how many episode spans it got.
        `rivals` are the other joined spans of its trace in the same request: an episode
        goes to the innermost span covering it (a DB span inside a handler span on one
        goroutine), not to every enclosing one."""
        return self.finish_all([j], {j.trace_id: rivals} if rivals is not None else None)[0]

    def finish_all(
        self, prepared: list[Joined], rivals: dict[bytes, Rivals] | None = None
    ) -> tuple[int, int]:
        """finish() for the prepared spans of one request, stage by stage over all of
        them (see prepare_scope): what each span gains (`j.extra`), then the episode
        spans (in span order: their random ids are drawn in the same order), then the
        claims. `rivals`: per trace id, its spans that compete for episodes. Returns
        (episode spans, spans joined to a goroutine)."""
        tcp = self.timelines.tcp
        prefer = self.prefer
        attributes = self._attributes
        for j in prepared:
            tl, grpc = j.tl, j.grpc
            parts = attributes(j.bd, j.goid, j.join, j.has_attr)
            events: list[bytes] = []
            if grpc is not None:
                _write_grpc(parts, events, grpc)
            sockets: set[str] = _NO_SOCKETS
            if j.grpc_span and grpc is not None and grpc.conns:
                sockets = _grpc_sockets(tl, grpc.conns, j.start, j.end, prefer)
                _write_tcp_context(parts, tcp, sockets, j.start, j.end)
            if tcp or tl.instants:  # else there is no event to copy
                self._span_events(events, tl, j.an, j.start, j.end, j.grpc_span, sockets)
            j.extra = b"".join(parts + events if events else parts)
        n = 0
        for j in prepared:
            episodes = j.bd.episodes
            if not episodes:
                continue
            tl, an, out, trace, start, end = j.tl, j.an, j.out, j.trace_id, j.start, j.end
            parent = j.span.span_id
            group = rivals.get(trace) if rivals and j.goid else None
            if group is not None:
                mine = (end - start, j.order)
                for seg in episodes:
                    if not group.owned_by_inner(seg, j, mine):
                        out.append(episode_entry(tl, seg, trace, parent, an))
                        n += 1
            else:
                for seg in episodes:
                    out.append(episode_entry(tl, seg, trace, parent, an))
                n += len(episodes)
        joined = 0
        for j in prepared:
            tl, start, end = j.tl, j.start, j.end
            if j.goid:
                joined += 1
                goroutines = j.an.goroutines
                done = tl.done
                for g in goroutines:
                    if done.get(g, 0) < end:
                        done[g] = end
                tl.claim(start, end, goroutines)
            else:
                tl.claim(start, end, ())
        return n, joined

    @staticmethod
    def _attributes(bd: Breakdown, goid: int, join: str, has_attr: bool) -> list[bytes]:
        """The span's goblock.* attributes, encoded (Span.attributes entries)."""
        ns = bd.ns
        p = _FIXED_PREFIXES  # order of FIXED_CATEGORIES
        parts = [
            _FIXED_STRUCT.pack(
                p[0], ns["on_cpu"] / 1e6, p[1], ns["runqueue"] / 1e6, p[2], ns["syscall"] / 1e6,
                p[3], ns["gc.stw"] / 1e6, p[4], ns["gc.assist"] / 1e6,
                p[5], ns["unattributed"] / 1e6,
            )
        ]  # fmt: skip
        if len(ns) > len(FIXED_CATEGORIES):
            for cat, v in ns.items():
                if cat not in _FIXED_SET:
                    prefix = _cat_prefix.get(cat)
                    if prefix is None:
                        prefix = _category_prefix(cat)
                    parts.append(prefix + _pack_d(v / 1e6))
        parts.append(
            _CAUSE_ATTRS.get(bd.cause) or _const_attr(_CAUSE_ATTRS, "goblock.cause", bd.cause)
        )
        parts.append(attr_str("goblock.diagnosis", bd.diagnosis))
        parts.append(_JOIN_ATTRS.get(join) or _const_attr(_JOIN_ATTRS, "goblock.join", join))
        if goid and not has_attr:
            parts.append(goid_attr(goid))
        return parts

    def _span_events(
        self,
        out: list[bytes],
        tl: ProcTimeline,
        an: Analysis,
        start: int,
        end: int,
        grpc_done: bool,
        sockets: set[str],
    ) -> None:
        """TCP events of the span's connections (its goroutines' sockets, and `sockets`:
        a gRPC span's transport connection) and the process's instants in its window
        (gRPC frames not already written by the gRPC diagnosis), encoded into `out`."""
        added = 0
        tcp = self.timelines.tcp
        if tcp and (an.goroutines or sockets):
            # every goroutine of the span counts (children off the critical path too)
            targets = set(an.targets) | sockets
            for g in an.goroutines:
                for r in tl.goroutine(g, start, end, self.prefer):
                    if r[2] == SYSCALL and r[3][1]:
                        targets.add(r[3][1])
            for target in targets:
                key = conn_key(target)
                for t, a in tcp.get(key, ()) if key else ():
                    if start <= t <= end and a.get("type") != "probe" and added < MAX_SPAN_EVENTS:
                        out.append(_event(t, f"tcp {a.get('type', '')}", "goblock.tcp.", a.items()))
                        added += 1
        for t, g, kind, a in tl.instants:
            if grpc_done and kind == "grpc":
                continue
            if start <= t <= end and (g == 0 or g in an.goroutines) and added < MAX_SPAN_EVENTS:
                out.append(_event(t, f"{kind} {a.get('type', '')}", f"goblock.{kind}.", a.items()))
                added += 1


# how far before a gRPC span its transport goroutines' socket syscalls are looked for
# (an idle connection's reader last read when the previous frame arrived)
_SOCKET_LOOKBACK_NS = 30_000_000_000


def _grpc_sockets(tl: ProcTimeline, conns: set[str], start: int, end: int, prefer: int) -> set[str]:
    """The TCP sockets of grpc-go connections: the RPC's goroutine never touches its
    socket (the transport's reader and loopy writer goroutines do), so the socket is the
    fd target of the syscalls of the goroutines that reported frames on the connection."""
    goids = {g for _, g, kind, a in tl.instants if g and kind == "grpc" and a.get("conn") in conns}
    out: set[str] = set()
    for g in goids:
        for r in tl.goroutine(g, start - _SOCKET_LOOKBACK_NS, end, prefer):
            if r[2] == SYSCALL and r[3][1] and conn_key(r[3][1]):
                out.add(r[3][1])
    return out


_TCP_COUNTS = {
    "retransmit": "goblock.tcp.retransmits",
    "reset_sent": "goblock.tcp.resets",
    "reset_received": "goblock.tcp.resets",
    "zero_window": "goblock.tcp.zero_windows",
}
_TCP_SAMPLE = ("srtt_us", "snd_wnd", "rcv_wnd", "snd_cwnd")


def _write_tcp_context(
    out: list[bytes], tcp: dict[frozenset[str], list[tuple[int, dict[str, Any]]]],
    sockets: set[str], start: int, end: int,
) -> None:  # fmt: skip
    """The TCP state of a gRPC span's connection: the kernel's last sample of it up to
    the span's end (srtt, windows, cwnd) and its trouble during the span, as encoded
    attributes appended to `out`."""
    for target in sorted(sockets):
        key = conn_key(target)
        recs = tcp.get(key, ()) if key else ()
        if not recs:
            continue
        counts: dict[str, int] = {}
        sample: dict[str, Any] | None = None
        for t, a in reversed(recs):
            if t > end:
                continue
            typ = a.get("type")
            if sample is None and typ in ("probe", "zero_window"):
                sample = a
            if t >= start and typ in _TCP_COUNTS:
                counts[_TCP_COUNTS[typ]] = counts.get(_TCP_COUNTS[typ], 0) + 1
            if t < start and sample is not None:
                break
        blob = [attr_str("goblock.tcp.connection", target)]
        if sample is not None:
            blob += [
                attr_int(f"goblock.tcp.{k}", int(sample[k])) for k in _TCP_SAMPLE if k in sample
            ]
        blob += [attr_int(k, v) for k, v in counts.items()]
        out += blob
        return  # one connection per RPC


def _write_grpc(attrs: list[bytes], events: list[bytes], diag: GrpcDiagnosis) -> None:
    """The gRPC attributes and frame events, encoded into `attrs` and `events` (cause and
    sentence went in with the breakdown)."""
    if diag.attributes:
        attrs += [attr(k, v) for k, v in diag.attributes.items()]
    for e in diag.events[:MAX_SPAN_EVENTS]:
        events.append(
            span_event(
                e.time_ns,
                e.name,
                b"".join(
                    attr(k, v, EVENT_ATTR)
                    for k, v in e.attributes.items()
                    if isinstance(v, str | int | float)
                ),
            )
        )


def _event(t: int, name: str, prefix: str, items: Iterable[tuple[str, Any]]) -> bytes:
    """A span event (Span.events entry) with the `type`-less items as `prefix`ed
    attributes, encoded."""
    return span_event(
        t,
        name,
        b"".join(
            attr(prefix + k, v, EVENT_ATTR)
            for k, v in items
            if k != "type" and isinstance(v, str | int | float)
        ),
    )
