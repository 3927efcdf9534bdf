"""The goblock processor: joins app spans with goblock events (DESIGN §3).

Events (from the ebpf and gotrace receivers) go into per-process timelines and are not
forwarded. Spans of processes nobody observes pass straight through — the very bytes
received, no span parsed. Spans of observed processes are parsed into a private copy,
held `join_delay` for late events, then enriched (attributes, episode child spans, TCP
span events) and sent on. Shutdown flushes everything held at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otel_goblock.processors.goblock.config import Config
from otel_goblock.processors.goblock.encode import (
    field_bounds,
    read_varint,
    split_entries,
    varint,
)
from otel_goblock.processors.goblock.join import Joined, Joiner, Rivals
from otel_goblock.processors.goblock.peerpid import PeerPidResolver
from otel_goblock.processors.goblock.routing import (
    PidCache,
    pid_of_resource,
    resource_spans_ranges,
)
from otel_goblock.processors.goblock.timeline import SOURCES, Timelines
from otel_goblock.processors.goblock.unjoined import build_request, collect

from otel_goblock.component import Component, CreateSettings, Host
from otel_goblock.consumer import ConsumerError, PermanentError
from otel_goblock.pdata import Event, RequestInfo, Traces, count_spans

_HOUSEKEEPING_S = 1.0


@dataclass(slots=True)
class _Held:
    deadline: float  # monotonic
    msg: ExportTraceServiceRequest  # private: only observed resources
    pids: list[int]  # per resource_spans of msg
    raw: bytes | None  # msg serialized as received (None: it came parsed)


class GoblockProcessor(Component):
    def __init__(self, settings: CreateSettings, config: Config, next_consumer: object) -> None:
        self._cfg = config
        self._next = next_consumer
        self._log = settings.logger
        self.timelines = Timelines(config.max_events, int(config.min_episode * 1e9))
        self._prefer = SOURCES[config.prefer_source]
        self._joiner = Joiner(
            self.timelines,
            self._prefer,
            int(config.min_episode * 1e9),
            config.critical_path_depth,
        )
        self._pids = PidCache()
        self._peers = PeerPidResolver()
        self._held: deque[_Held] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_housekeeping = time.monotonic()
        self._attrs = attrs = {"processor": str(settings.id)}
        m = settings.meter
        self._m_events = m.create_counter(
            "goblock_events_accepted", description="goblock events stored in the timelines"
        )
        self._m_dropped = m.create_counter(
            "goblock_events_dropped",
            description="events lost to the join: max_events reached (oldest dropped), or "
            "late (arrived after a span they belong to had left)",
        )
        self._m_expired = m.create_counter(
            "goblock_events_expired", description="events older than retention, forgotten"
        )
        self._m_enriched = m.create_counter(
            "goblock_spans_enriched", description="spans of observed processes, joined"
        )
        self._m_joined = m.create_counter(
            "goblock_spans_joined_goroutine",
            description="enriched spans joined to a goroutine (marker or attribute)",
        )
        self._m_passed = m.create_counter(
            "goblock_spans_passed_through", description="spans of unobserved processes"
        )
        self._m_episodes = m.create_counter(
            "goblock_episode_spans", description="episode child spans created"
        )
        self._m_unjoined = m.create_counter(
            "goblock_episodes_unjoined",
            description="episodes no span claimed (action: drop or emit)",
        )
        self._m_failed = m.create_counter(
            "goblock_send_failed_spans",
            description="enriched spans the next consumer refused after the join delay",
        )
        self._attrs_late = {**attrs, "reason": "late"}
        self._attrs_full = {**attrs, "reason": "max_events"}
        self._attrs_unjoined = {**attrs, "action": config.unjoined}

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, host: Host) -> None:
        self._task = asyncio.create_task(self._run())

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._release(float("inf"))
        await self._housekeeping(final=True)

    # -- data -----------------------------------------------------------------------

    async def consume_traces(self, data: Traces) -> None:
        if data.events:
            self.ingest(data.events)
        if not data.span_count:
            return
        if not self.timelines.procs:
            self._m_passed.add(data.span_count, self._attrs)
            await self._next.consume_traces(_without_events(data))  # type: ignore[attr-defined]
            return
        observed, rest, rest_spans = await self._route(data)
        if rest is not None:
            self._m_passed.add(rest_spans, self._attrs)
            await self._next.consume_traces(rest)  # type: ignore[attr-defined]
        if observed is None:
            return
        held = _Held(time.monotonic() + float(self._cfg.join_delay), *observed)
        if self._cfg.join_delay <= 0:
            await self._send(self._enrich(held))
            return
        if not self._held:
            self._wake.set()
        self._held.append(held)

    def ingest(self, events: list[Event]) -> None:
        tls = self.timelines
        late = tls.add(events)
        self._m_events.add(len(events), self._attrs)
        if late:
            self._m_dropped.add(late, self._attrs_late)
        if tls.over_limit():
            self._m_dropped.add(tls.drop_oldest(), self._attrs_full)

    async def _pid_from_peer(self, info: RequestInfo) -> int | None:
        if not self._cfg.resolve_peer or not info.peer:
            return None
        found, pid = self._peers.cached(info.peer)
        if found:
            return pid
        return await asyncio.to_thread(self._peers.resolve, info.peer)

    async def _route(
        self, data: Traces
    ) -> tuple[
        tuple[ExportTraceServiceRequest, list[int], bytes | None] | None, Traces | None, int
    ]:
        """Split a request into (observed part to hold, unobserved part to forward now)."""
        observed = self.timelines.procs
        peer_pid: int | None = None
        peer_done = False
        if data.has_raw():
            raw = data.serialized()
            try:
                ranges = resource_spans_ranges(raw)
            except (ValueError, IndexError):
                ranges = None
            if ranges is not None:
                keep: list[tuple[int, int]] = []
                pids: list[int] = []
                for start, end, res in ranges:
                    pid = self._pids.pid(res) if res else None
                    if pid is None:
                        if not peer_done:
                            peer_pid, peer_done = await self._pid_from_peer(data.info), True
                        pid = peer_pid
                    if pid is not None and pid in observed:
                        keep.append((start, end))
                        pids.append(pid)
                if not keep:
                    return None, _without_events(data), data.span_count
                mine = b"".join(raw[a:b] for a, b in keep)
                try:
                    msg = ExportTraceServiceRequest.FromString(mine)
                except DecodeError as e:
                    raise PermanentError(f"malformed OTLP traces request: {e}") from e
                if len(keep) == len(ranges):
                    return (msg, pids, mine), None, 0
                kept = set(keep)
                other = b"".join(raw[a:b] for a, b, _ in ranges if (a, b) not in kept)
                n_other = data.span_count - count_spans(msg)
                return (
                    (msg, pids, mine),
                    Traces(raw=other, span_count=n_other, info=data.info),
                    n_other,
                )
        # parsed message only: read resources directly; copy what will be edited
        try:
            src = data.message()
        except DecodeError as e:
            raise PermanentError(f"malformed OTLP traces request: {e}") from e
        pids_all: list[int | None] = []
        for rs in src.resource_spans:
            pid = pid_of_resource(rs.resource)
            if pid is None:
                if not peer_done:
                    peer_pid, peer_done = await self._pid_from_peer(data.info), True
                pid = peer_pid
            pids_all.append(pid if pid is not None and pid in observed else None)
        if not any(p is not None for p in pids_all):
            return None, _without_events(data), data.span_count
        msg = ExportTraceServiceRequest()
        other_msg = ExportTraceServiceRequest()
        pids = []
        for rs, pid in zip(src.resource_spans, pids_all, strict=True):
            if pid is not None:
                msg.resource_spans.add().CopyFrom(rs)
                pids.append(pid)
            else:
                other_msg.resource_spans.add().CopyFrom(rs)
        if not other_msg.resource_spans:
            return (msg, pids, None), None, 0
        n_other = count_spans(other_msg)
        return (
            (msg, pids, None),
            Traces(message=other_msg, span_count=n_other, info=data.info),
            n_other,
        )

    def _enrich(self, held: _Held) -> Traces:
        """Join the spans of a held request. What a span gains (j.extra) is appended to
        its bytes as received, its episode spans to its scope's, and the request is sent
        on as bytes: no merge into the parsed spans and no serialization of the whole
        request after (protobuf merges appended repeated fields: the same request as
        merging them into the message). A request that came parsed, or whose bytes do not
        take apart as its parse did, gets them merged into the message instead."""
        procs = self.timelines.procs
        joiner = self._joiner
        spans = episodes = joined = 0
        msg = held.msg
        # per resource_spans: None (not joined) or its scopes' (children, what each span
        # gains: encoded, in span order)
        done: list[list[tuple[list[bytes], list[bytes]]] | None] = []
        for rs, pid in zip(msg.resource_spans, held.pids, strict=True):
            tl = procs.get(pid)
            if tl is None:
                done.append(None)
                continue
            prepared: list[Joined] = []
            per_scope: list[tuple[list[bytes], list[Joined]]] = []
            for ss in rs.scope_spans:
                children: list[bytes] = []
                group = joiner.prepare_scope(list(ss.spans), tl, children, len(prepared))
                prepared += group
                per_scope.append((children, group))
            # spans of one trace on shared goroutines compete for episodes (innermost wins);
            # usually every trace has one such span here: a set tells, no groups built
            ids = [j.trace_id for j in prepared if j.goid and j.bd.episodes]
            rivals: dict[bytes, Rivals] = {}
            if len(set(ids)) < len(ids):
                by_trace: dict[bytes, list[Joined]] = {}
                for j in prepared:
                    if j.goid and j.bd.episodes:
                        by_trace.setdefault(j.trace_id, []).append(j)
                rivals = {t: Rivals(g) for t, g in by_trace.items() if len(g) > 1}
            n_episodes, n_joined = joiner.finish_all(prepared, rivals)
            episodes += n_episodes
            joined += n_joined
            spans += len(prepared)
            done.append([(children, [j.extra for j in group]) for children, group in per_scope])
        self._m_enriched.add(spans, self._attrs)
        if joined:
            self._m_joined.add(joined, self._attrs)
        if episodes:
            self._m_episodes.add(episodes, self._attrs)
        raw = _assemble(held.raw, done) if held.raw is not None else None
        if raw is not None:
            return Traces(raw=raw, span_count=spans + episodes)
        for rs, scopes_done in zip(msg.resource_spans, done, strict=True):
            if scopes_done is None:
                continue
            for ss, (children, extras) in zip(rs.scope_spans, scopes_done, strict=True):
                for span, extra in zip(ss.spans, extras, strict=True):
                    span.MergeFromString(extra)
                if children:
                    ss.MergeFromString(b"".join(children))
        return Traces(message=msg, span_count=spans + episodes)

    async def _send(self, data: Traces) -> None:
        try:
            await self._next.consume_traces(data)  # type: ignore[attr-defined]
        except ConsumerError as e:
            # the request was acknowledged when it arrived: count and log the loss
            self._m_failed.add(data.span_count, self._attrs)
            self._log.warning(
                "next consumer refused enriched spans; dropped",
                extra={"spans": data.span_count, "error": str(e)},
            )

    async def _release(self, now: float) -> None:
        held = self._held
        while held and held[0].deadline <= now:
            await self._send(self._enrich(held.popleft()))
            # let receivers run between requests: a backlog must not stall the loop
            await asyncio.sleep(0)

    async def _housekeeping(self, final: bool = False) -> None:
        wall = time.time_ns()
        cfg = self._cfg
        expired = self.timelines.expire(wall - int(cfg.retention * 1e9)) if not final else 0
        if expired:
            self._m_expired.add(expired, self._attrs)
        cutoff = wall if final else wall - int(cfg.unjoined_after * 1e9)
        found: dict[int, list] = {}
        total = 0
        for pid, tl in self.timelines.procs.items():
            segs = collect(tl, cutoff, self._prefer)
            if segs:
                found[pid] = segs
                total += len(segs)
        if not total:
            return
        self._m_unjoined.add(total, self._attrs_unjoined)
        if cfg.unjoined == "emit":
            req, n = build_request(self.timelines, found, cfg.service_names)
            await self._send(Traces(message=req, span_count=n, info=RequestInfo("goblock")))

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            await self._release(now)
            if now - self._last_housekeeping >= _HOUSEKEEPING_S:
                self._last_housekeeping = now
                try:
                    await self._housekeeping()
                except Exception:  # keep joining even if one pass fails
                    self._log.exception("goblock housekeeping failed")
            wait = _HOUSEKEEPING_S
            if self._held:
                wait = min(wait, max(0.0, self._held[0].deadline - time.monotonic()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    @property
    def held_spans(self) -> int:
        return sum(count_spans(h.msg) for h in self._held)


def _without_events(data: Traces) -> Traces:
    """The same request without the events (this processor consumed them): the original
    object when it had none, so pass-through is byte-identical and copy-free."""
    if not data.events:
        return data
    if data.has_raw():
        return Traces(raw=data.serialized(), span_count=data.span_count, info=data.info)
    return Traces(message=data.message(), span_count=data.span_count, info=data.info)


def _assemble(raw: bytes, done: list[list[tuple[list[bytes], list[bytes]]] | None]) -> bytes | None:
    """The enriched request from the bytes it was parsed from: each joined span's entry
    re-framed around its bytes and its additions, its scope's episode spans after its
    spans, every other field as it came; resources not joined verbatim. None when the
    bytes do not take apart as the parse did (a span's bytes must be the span's): the
    caller merges into the parsed message instead."""
    try:
        rss, other = split_entries(raw, 0, len(raw), 0x0A)
        if len(rss) != len(done):
            return None
        out = [other]
        for (rs_at, a, b), scopes in zip(rss, done, strict=True):
            if scopes is None:
                out.append(raw[rs_at:b])
                continue
            entries, rs_other = split_entries(raw, a, b, 0x12)
            if len(entries) != len(scopes):
                return None
            rs_body = [rs_other]
            for (_, sa, sb), (children, extras) in zip(entries, scopes, strict=True):
                body = _reframe(raw, sa, sb, extras)
                if body is None:
                    return None
                body += children
                blob = b"".join(body)
                rs_body.append(b"\x12" + varint(len(blob)) + blob)
            blob = b"".join(rs_body)
            out.append(b"\x0a" + varint(len(blob)) + blob)
    except (ValueError, IndexError):
        return None
    return b"".join(out)


def _reframe(raw: bytes, start: int, end: int, extras: list[bytes]) -> list[bytes] | None:
    """A ScopeSpans' fields in raw[start:end], its spans (field 2) each with its
    additions (the i-th span's: extras[i]) appended under a new length; None when the
    spans found are not as many as the parse's."""
    body: list[bytes] = []
    append = body.append
    k, n_spans = 0, len(extras)
    pos = start
    while pos < end:
        if raw[pos] == 0x12:  # a span
            p = pos + 1
            n = raw[p]
            if n < 128:
                p += 1
            else:
                n, p = read_varint(raw, p)
            e = p + n
            if e > end or k == n_spans:
                return None
            extra = extras[k]
            k += 1
            if extra:
                n += len(extra)
                if 128 <= n < 16384:  # the usual span: a two-byte length, no call
                    append(bytes((0x12, n & 0x7F | 0x80, n >> 7)))
                else:
                    append(b"\x12" + varint(n))
                append(raw[p:e])
                append(extra)
            else:
                append(raw[pos:e])
            pos = e
            continue
        first = pos
        key, pos = read_varint(raw, pos)
        try:
            pos = field_bounds(raw, pos, key & 7)[1]
        except ValueError:
            return None
        if pos > end:
            return None
        append(raw[first:pos])
    return body if k == n_spans else None
