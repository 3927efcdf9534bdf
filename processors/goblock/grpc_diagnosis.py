"""What grpc-go's transport did to one RPC span, from the `grpc` events of its process.

Pure: no state, no I/O. The goblock processor calls `diagnose(...)` for spans whose
`rpc.system` (older otelgrpc) or `rpc.system.name` (newer) is "grpc" and merges the
result: attributes, span events, and a cause + sentence when gRPC explains the span.

Which events count for a span (DESIGN §3, §6):
- flow-control waits (intervals of `(*http2Client|Server).write`) only on the span's own
  goroutines: they run on the application goroutine that owns the RPC;
- instants (WINDOW_UPDATE, PING, GOAWAY, keepalive closes) happen on transport goroutines
  (reader, loopy), so they are taken from the process within the span's time window, on
  the span's side of the transport (a CLIENT span sees the http2Client's frames, a SERVER
  span the http2Server's) and, once the span's connection is known from its waits, on that
  connection only.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from otel_goblock.pdata import Event

SPAN_KIND_SERVER = 2  # opentelemetry.proto.trace.v1.Span.SpanKind
SPAN_KIND_CLIENT = 3

# a GOAWAY or keepalive close this close to the span's end ended the RPC (grpc-go's
# server closes the connection up to 1 s after a closing GOAWAY: goAwayLoopyWriterTimeout)
ENDED_BY_WINDOW_NS = 1_500_000_000
# ... or the span ended this close to its connection's close after the GOAWAY
CLOSE_SLACK_NS = 100_000_000
# without the processor's breakdown, the flow-control wait is dominant when it holds at
# least this share of the span (no other category can then be larger)
DOMINANT_SHARE = 0.5


@dataclass(frozen=True)
class SpanEvent:
    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass
class GrpcDiagnosis:
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[SpanEvent] = field(default_factory=list)
    cause: str | None = None  # "grpc_flow_control" | "grpc_keepalive" | None
    diagnosis: str | None = None
    # the span's transport connections (grpc-go's transport pointers), when known: from
    # its flow-control waits, else from the frame that tore its connection down
    conns: set[str] = field(default_factory=set)


def is_grpc_span(attrs: Mapping[str, Any]) -> bool:
    return attrs.get("rpc.system") == "grpc" or attrs.get("rpc.system.name") == "grpc"


def fmt_duration(ms: float) -> str:
    """Like a Go configuration reads: 200 ms, 1s, 1.5s, 5m, 2h."""
    if ms >= 3_600_000 and ms % 3_600_000 == 0:
        return f"{int(ms // 3_600_000)}h"
    if ms >= 60_000 and ms % 60_000 == 0:
        return f"{int(ms // 60_000)}m"
    if ms >= 1000:
        return f"{ms / 1000:g}s" if ms % 100 == 0 else f"{ms / 1000:.2f}s"
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def fmt_bytes(n: int) -> str:
    if n >= 1024 * 1024 - 1:
        return f"{round(n / (1024 * 1024))} MiB"
    if n >= 1023:
        return f"{round(n / 1024)} KiB"
    return f"{n} B"


def _union_ns(intervals: list[tuple[int, int]]) -> int:
    total, cur_s, cur_e = 0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None and cur_s is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None and cur_s is not None:
        total += cur_e - cur_s
    return total


def _tears_down(a: Mapping[str, Any]) -> bool:
    """A frame or close that kills RPCs (a graceful NO_ERROR GOAWAY only drains)."""
    if a.get("type") == "keepalive_timeout":
        return True
    if a.get("type") != "goaway":
        return False
    return bool(a.get("code")) or a.get("debug_data") == "too_many_pings"


def diagnose(
    attrs: Mapping[str, Any],
    kind: int,
    start_ns: int,
    end_ns: int,
    events: Iterable[Event],
    goroutines: Collection[int] | None = None,
    breakdown_ms: Mapping[str, float] | None = None,
) -> GrpcDiagnosis | None:
    """The gRPC transport's part in one span; None when it is not a gRPC span.

    `events`: the span's process's events (any kind; only kind "grpc" is read).
    `goroutines`: the span's goroutines (its own and children); None = every goroutine of
    the process (only sound for a process running one RPC at a time).
    `breakdown_ms`: the processor's other categories for this span (category → ms), used
    to decide dominance; without it the wait must be ≥ DOMINANT_SHARE of the span.
    """
    if not is_grpc_span(attrs):
        return None
    side = {SPAN_KIND_CLIENT: "client", SPAN_KIND_SERVER: "server"}.get(kind)
    dur = max(end_ns - start_ns, 1)
    waits: list[Event] = []
    instants: list[Event] = []
    closes: list[Event] = []
    peer_min_time: set[int] = set()  # enforcement MinTime of servers seen in this process
    for e in events:
        if e.kind != "grpc":
            continue
        a = e.attrs
        if a.get("type") == "ping" and a.get("enforcement_min_time_ms"):
            peer_min_time.add(int(a["enforcement_min_time_ms"]))
        if side is not None and a.get("side", side) != side:
            continue
        if a.get("type") == "flow_control_wait":
            overlaps = e.end_ns > start_ns and e.start_ns < end_ns
            if overlaps and (goroutines is None or e.goid in goroutines):
                waits.append(e)
        elif start_ns <= e.start_ns <= end_ns:
            instants.append(e)
        if a.get("type") == "transport_close" and start_ns <= e.start_ns <= end_ns + CLOSE_SLACK_NS:
            closes.append(e)
    conns = {e.attrs.get("conn") for e in waits if e.attrs.get("conn")}
    if conns:
        instants = [e for e in instants if e.attrs.get("conn") in conns]
    instants.sort(key=lambda e: e.start_ns)

    out = GrpcDiagnosis()
    wait_ns = _union_ns([(max(e.start_ns, start_ns), min(e.end_ns, end_ns)) for e in waits])
    if waits:
        out.attributes["goblock.grpc.flow_control.wait.ms"] = round(wait_ns / 1e6, 3)
    wus = [e for e in instants if e.attrs.get("type") == "window_update"]
    if wus:
        out.attributes["goblock.grpc.window_updates"] = len(wus)
    pings_sent = [
        e
        for e in instants
        if e.attrs.get("type") == "ping"
        and e.attrs.get("direction") == "sent"
        and not e.attrs.get("ack")
    ]
    if pings_sent:
        out.attributes["goblock.grpc.pings.sent"] = len(pings_sent)

    ender: Event | None = None
    for e in instants:
        a = e.attrs
        # the GOAWAYs a server sends (seen as received on client spans); a client's own
        # NO_ERROR GOAWAY when it shuts a connection down is not news to its span
        server_goaway = (a.get("side") == "server") == (a.get("direction") == "sent")
        if a.get("type") == "goaway" and (side is None or server_goaway):
            if "goblock.grpc.goaway.code" not in out.attributes or _tears_down(a):
                if "code" in a:
                    out.attributes["goblock.grpc.goaway.code"] = int(a["code"])
                if a.get("debug_data"):
                    out.attributes["goblock.grpc.goaway.debug_data"] = a["debug_data"]
            ev = {
                "http2.goaway.direction": a.get("direction", ""),
                "http2.goaway.conn": a.get("conn", ""),
            }
            if "code" in a:
                ev["http2.goaway.error_code"] = int(a["code"])
                ev["http2.goaway.error_name"] = a.get("code_name", "")
            if a.get("debug_data"):
                ev["http2.goaway.debug_data"] = a["debug_data"]
            if "last_stream_id" in a:
                ev["http2.goaway.last_stream_id"] = int(a["last_stream_id"])
            out.events.append(SpanEvent("http2.goaway", e.start_ns, ev))
        elif a.get("type") == "keepalive_timeout":
            out.events.append(
                SpanEvent(
                    "grpc.keepalive.timeout",
                    e.start_ns,
                    {"grpc.transport.close.reason": a.get("reason", ""), "side": a.get("side")},
                )
            )
        if ender is None and _tears_down(a) and _ended_rpc(e, end_ns, closes):
            ender = e

    out.conns = {str(c) for c in conns} or (
        {str(ender.attrs["conn"])} if ender is not None and ender.attrs.get("conn") else set()
    )
    if ender is not None:
        out.cause = "grpc_keepalive"
        out.diagnosis = _keepalive_sentence(ender, instants, side, peer_min_time, start_ns)
    elif waits and _dominant(wait_ns, dur, breakdown_ms):
        out.cause = "grpc_flow_control"
        out.diagnosis = _flow_sentence(wait_ns, waits, wus)
    return out


def _ended_rpc(e: Event, end_ns: int, closes: list[Event]) -> bool:
    """The teardown `e` ended the RPC: the span ended soon after it, or right when the
    connection it arrived on closed."""
    if end_ns - e.start_ns <= ENDED_BY_WINDOW_NS:
        return True
    conn = e.attrs.get("conn")
    return any(
        c.attrs.get("conn") == conn
        and c.start_ns >= e.start_ns
        and abs(end_ns - c.start_ns) <= CLOSE_SLACK_NS
        for c in closes
    )


def _dominant(wait_ns: int, dur: int, breakdown_ms: Mapping[str, float] | None) -> bool:
    if breakdown_ms:
        wait_ms = wait_ns / 1e6
        others = [v for k, v in breakdown_ms.items() if not k.startswith("grpc")]
        return wait_ms > 0 and all(wait_ms >= v for v in others)
    return wait_ns >= DOMINANT_SHARE * dur


def _flow_sentence(wait_ns: int, waits: list[Event], wus: list[Event]) -> str:
    windows = {int(e.attrs["stream_window"]) for e in waits if e.attrs.get("stream_window")}
    detail = [f"{len(waits)} sends waited"]
    if len(windows) == 1:
        detail.append(f"stream window {fmt_bytes(windows.pop())}")
    if wus:
        detail.append(f"{len(wus)} WINDOW_UPDATEs received")
    return (
        f"stream send stalled {fmt_duration(wait_ns / 1e6)} waiting for the HTTP/2 "
        f"flow-control window: the peer reads slowly ({', '.join(detail)})"
    )


def _ping_interval_ms(pings: list[Event]) -> float | None:
    """Median gap between consecutive keepalive pings of one connection."""
    by_conn: dict[str, list[int]] = {}
    for e in pings:
        by_conn.setdefault(e.attrs.get("conn", ""), []).append(e.start_ns)
    gaps = [
        (b - a) / 1e6
        for ts in by_conn.values()
        for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False)
    ]
    return median(gaps) if gaps else None


def _keepalive_sentence(
    ender: Event,
    instants: list[Event],
    side: str | None,
    peer_min_time: set[int],
    start_ns: int,
) -> str:
    a = ender.attrs
    at = fmt_duration((ender.start_ns - start_ns) / 1e6)
    if a.get("type") == "keepalive_timeout":
        return (
            f"connection closed {at} into the RPC by a keepalive timeout: "
            f"{a.get('reason') or 'ping not acknowledged in time'} (the peer or the network "
            "stopped answering pings)"
        )
    conn = a.get("conn")
    same_conn = [e for e in instants if e.attrs.get("conn") == conn]
    name = a.get("code_name") or (f"code {a['code']}" if "code" in a else "(code unknown)")
    debug = a.get("debug_data", "")
    from_server = (a.get("side") == "server") == (a.get("direction") == "sent")
    head = (
        f"{'server' if from_server else 'client'} sent GOAWAY {name}"
        f"{' ' + debug if debug else ''} {at} into the RPC"
    )
    if debug != "too_many_pings":
        return f"{head}: the connection was torn down under the RPC"
    # too_many_pings: name the client's ping rate against the server's MinTime
    client_time = {
        int(e.attrs["keepalive_time_ms"]) for e in same_conn if "keepalive_time_ms" in e.attrs
    }
    min_time = {
        int(e.attrs["enforcement_min_time_ms"])
        for e in same_conn
        if "enforcement_min_time_ms" in e.attrs
    } or peer_min_time
    if a.get("side") == "server":  # the server counts the pings it received
        pings = [
            e
            for e in same_conn
            if e.attrs.get("type") == "ping"
            and e.attrs.get("direction") == "received"
            and not e.attrs.get("ack")
        ]
    else:
        pings = [
            e
            for e in same_conn
            if e.attrs.get("type") == "ping"
            and e.attrs.get("direction") == "sent"
            and not e.attrs.get("ack")
        ]
    gap = _ping_interval_ms(pings)
    if client_time and len(client_time) == 1:
        rate = f"client keepalive time {fmt_duration(client_time.pop())}"
        if gap is not None:
            rate += f" (pings seen every ~{fmt_duration(gap)}, {len(pings)} in the RPC)"
    elif gap is not None:
        rate = f"client pinged every ~{fmt_duration(gap)} ({len(pings)} pings in the RPC)"
    else:
        rate = ""
    if len(min_time) == 1:
        limit = f"the server's enforcement MinTime {fmt_duration(min_time.pop())}"
    else:
        limit = (
            "the server's enforcement MinTime (not visible from this process; "
            "grpc-go's default is 5m)"
        )
    if not rate:
        seen = f" ({len(pings)} pings seen in the RPC)" if pings else ""
        return f"{head}: the client pinged more often than {limit} allows{seen}"
    return f"{head}: {rate} is below {limit}"


# ---- protobuf convenience (tests, and processors that work on parsed spans) ----


def span_inputs(span: Any) -> tuple[dict[str, Any], int, int, int]:
    """(attributes as a dict of plain values, kind, start ns, end ns) of an OTLP Span."""
    attrs: dict[str, Any] = {}
    for kv in span.attributes:
        v = kv.value
        which = v.WhichOneof("value")
        attrs[kv.key] = getattr(v, which) if which else None
    return attrs, span.kind, span.start_time_unix_nano, span.end_time_unix_nano


def apply(span: Any, diag: GrpcDiagnosis) -> None:
    """Write a diagnosis into an OTLP Span (attributes, events, goblock.cause/diagnosis)."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def value(v: Any) -> Any:
        if isinstance(v, bool):
            return AnyValue(bool_value=v)
        if isinstance(v, int):
            return AnyValue(int_value=v)
        if isinstance(v, float):
            return AnyValue(double_value=v)
        return AnyValue(string_value=str(v))

    extra = dict(diag.attributes)
    if diag.cause:
        extra["goblock.cause"] = diag.cause
    if diag.diagnosis:
        extra["goblock.diagnosis"] = diag.diagnosis
    keep = [kv for kv in span.attributes if kv.key not in extra]
    del span.attributes[:]
    span.attributes.extend(keep)
    span.attributes.extend(KeyValue(key=k, value=value(v)) for k, v in extra.items())
    for ev in diag.events:
        pe = span.events.add(name=ev.name, time_unix_nano=ev.time_ns)
        pe.attributes.extend(
            KeyValue(key=k, value=value(v)) for k, v in ev.attributes.items() if v is not None
        )
