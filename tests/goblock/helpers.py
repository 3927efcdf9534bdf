"""Builders for goblock tests: real OTLP protobuf requests and receiver-shaped events."""

from __future__ import annotations

import logging
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otel_goblock.processors.goblock.config import Config
from otel_goblock.processors.goblock.processor import GoblockProcessor

from otel_goblock.component import ComponentID, CreateSettings
from otel_goblock.config import decode
from otel_goblock.pdata import Event, Traces
from otel_goblock.telemetry import Telemetry

MS = 1_000_000
PID = 4242
T0 = time.time_ns() - 5_000 * MS  # recent wall clock: retention is measured against now


def trace_id(n: int) -> bytes:
    return (0xABC000 + n).to_bytes(16, "big")


def span_id(n: int) -> bytes:
    return (0x5000 + n).to_bytes(8, "big")


def request(
    spans: list[tuple[int, int, int]],
    pid: int | None = PID,
    service: str = "demo",
    attrs: dict[int, dict[str, Any]] | None = None,
) -> ExportTraceServiceRequest:
    """spans: (n, start_ms, end_ms) relative to T0; n names trace id and span id."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    if pid is not None:
        rs.resource.attributes.append(KeyValue(key="process.pid", value=AnyValue(int_value=pid)))
    ss = rs.scope_spans.add()
    ss.scope.name = "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
    for n, a, b in spans:
        s = ss.spans.add()
        s.trace_id = trace_id(n)
        s.span_id = span_id(n)
        s.name = f"GET /op{n}"
        s.kind = Span.SPAN_KIND_SERVER
        s.start_time_unix_nano = T0 + a * MS
        s.end_time_unix_nano = T0 + b * MS
        s.attributes.append(KeyValue(key="http.route", value=AnyValue(string_value=f"/op{n}")))
        for k, v in (attrs or {}).get(n, {}).items():
            kv = s.attributes.add()
            kv.key = k
            if isinstance(v, int):
                kv.value.int_value = v
            else:
                kv.value.string_value = v
    return req


def ev(
    kind: str,
    a_ms: float,
    b_ms: float | None = None,
    *,
    goid: int = 0,
    tid: int = 0,
    pid: int = PID,
    source: str = "ebpf",
    **attrs: Any,
) -> Event:
    start = T0 + int(a_ms * MS)
    end = T0 + int((a_ms if b_ms is None else b_ms) * MS)
    return Event(kind, pid, tid, goid, start, end, attrs, source)


def marker(n: int, at_ms: float, goid: int, tid: int = 0, pid: int = PID, **kw: Any) -> Event:
    ids = {"trace_id": trace_id(n).hex(), "span_id": span_id(n).hex(), **kw}
    return ev("span_marker", at_ms, goid=goid, tid=tid, pid=pid, **ids)


class Sink:
    """The next consumer: keeps what reached it."""

    def __init__(self) -> None:
        self.got: list[Traces] = []

    async def consume_traces(self, data: Traces) -> None:
        self.got.append(data)

    def spans(self) -> list[Span]:
        return [
            s
            for t in self.got
            for rs in t.message().resource_spans
            for ss in rs.scope_spans
            for s in ss.spans
        ]


def make(
    options: dict[str, Any] | None = None, tel: Telemetry | None = None
) -> tuple[GoblockProcessor, Sink, Telemetry]:
    tel = tel or Telemetry()
    sink = Sink()
    cfg = decode(Config, {"join_delay": "0s", **(options or {})})
    settings = CreateSettings(
        id=ComponentID("goblock"),
        kind="processor",
        logger=logging.getLogger("goblock"),
        meter=tel.meter("goblock"),
        signals=frozenset({"traces"}),
    )
    return GoblockProcessor(settings, cfg, sink), sink, tel


def attrs_of(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


def categories_ms(span: Span) -> dict[str, float]:
    """The summing categories: every goblock.<category>.ms attribute."""
    return {
        k: v for k, v in attrs_of(span).items() if k.startswith("goblock.") and k.endswith(".ms")
    }


async def run(proc: GoblockProcessor, events: list[Event], req: ExportTraceServiceRequest) -> None:
    await proc.start(None)  # type: ignore[arg-type]
    await proc.consume_traces(Traces(raw=b"", span_count=0, events=events))
    await proc.consume_traces(Traces(raw=req.SerializeToString()))
    await proc.shutdown()


def app_span(sink: Sink, n: int) -> Span:
    return next(s for s in sink.spans() if s.span_id == span_id(n))


def children(sink: Sink, n: int) -> list[Span]:
    return [s for s in sink.spans() if s.parent_span_id == span_id(n)]
