"""Spans from OTLP requests and from the file exporter's output, in the same `Trace`/`Span`
model the Jaeger client returns, so a test can assert on either sink the same way.

The file exporter writes one OTLP/JSON request per line (`format: json`) or 4-byte
big-endian length-prefixed serialized requests (`format: proto`), see exporters/file."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from harness.jaeger import Span, Trace

_KIND = {
    PbSpan.SPAN_KIND_SERVER: "server",
    PbSpan.SPAN_KIND_CLIENT: "client",
    PbSpan.SPAN_KIND_PRODUCER: "producer",
    PbSpan.SPAN_KIND_CONSUMER: "consumer",
}


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, which) if which else None


def spans_of(req: ExportTraceServiceRequest) -> list[Span]:
    """Every span of a request. Status is mapped to the tags Jaeger shows
    (`otel.status_code`, `otel.status_description`), so `Span.is_error` means the same."""
    out = []
    for rs in req.resource_spans:
        resource = {kv.key: _value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                attrs = {kv.key: _value(kv.value) for kv in s.attributes}
                if s.status.code == Status.STATUS_CODE_ERROR:
                    attrs["otel.status_code"] = "ERROR"
                    attrs["otel.status_description"] = s.status.message
                out.append(
                    Span(
                        trace_id=s.trace_id.hex(),
                        span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex() or None,
                        name=s.name,
                        kind=_KIND.get(s.kind, "internal"),
                        start_us=s.start_time_unix_nano // 1000,
                        duration_us=(s.end_time_unix_nano - s.start_time_unix_nano) // 1000,
                        service=str(resource.get("service.name", "")),
                        attrs=attrs,
                        resource=resource,
                    )
                )
    return out


def group_traces(spans: Iterable[Span]) -> dict[str, Trace]:
    """Spans by trace id; a span seen twice (same span id) is kept once."""
    out: dict[str, Trace] = {}
    for s in spans:
        t = out.setdefault(s.trace_id, Trace(s.trace_id, []))
        if all(x.span_id != s.span_id for x in t.spans):
            t.spans.append(s)
    return out


def read_requests(path: Path) -> list[ExportTraceServiceRequest]:
    """The trace requests of a file exporter output file (json or proto, told apart by the
    first byte: a JSON line starts with '{'). Metrics requests in a shared file are skipped."""
    data = path.read_bytes()
    if not data:
        return []
    reqs = []
    if data[:1] == b"{":
        from otel_goblock.receivers.otlp.otlpjson import decode_traces

        for line in data.splitlines():
            if b'"resourceSpans"' in line:
                reqs.append(decode_traces(line))
        return reqs
    off = 0
    while off + 4 <= len(data):
        (n,) = struct.unpack_from(">I", data, off)
        req = ExportTraceServiceRequest()
        req.ParseFromString(data[off + 4 : off + 4 + n])
        if req.resource_spans:
            reqs.append(req)
        off += 4 + n
    return reqs


def read_traces(path: Path) -> dict[str, Trace]:
    """All traces in a file exporter's output, by trace id."""
    return group_traces(s for r in read_requests(path) for s in spans_of(r))
