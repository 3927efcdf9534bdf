"""The collector's debug exporter text ("otlptext"): the detailed dump of a request, with
the same section names, so output compares line by line with the collector's."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Iterable

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

SPAN_KINDS = ["Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"]
STATUS_CODES = ["Unset", "Ok", "Error"]
TEMPORALITY = ["Unspecified", "Delta", "Cumulative"]
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def timestamp(ns: int) -> str:
    """Go's time.String() in UTC: "2020-02-11 20:26:12.000000321 +0000 UTC"."""
    t = _EPOCH + datetime.timedelta(seconds=ns // 1_000_000_000)
    frac = f"{ns % 1_000_000_000:09d}".rstrip("0")
    return t.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + " +0000 UTC"


def value(v: AnyValue) -> str:
    which = v.WhichOneof("value")
    if which == "string_value":
        return f"Str({v.string_value})"
    if which == "int_value":
        return f"Int({v.int_value})"
    if which == "double_value":
        return f"Double({v.double_value:g})"
    if which == "bool_value":
        return f"Bool({'true' if v.bool_value else 'false'})"
    if which == "bytes_value":
        return f"Bytes({base64.b64encode(v.bytes_value).decode()})"
    if which == "array_value":
        return "Slice([" + ",".join(_plain(x) for x in v.array_value.values) + "])"
    if which == "kvlist_value":
        inner = ",".join(f'"{kv.key}":{_plain(kv.value)}' for kv in v.kvlist_value.values)
        return "Map({" + inner + "})"
    return "Empty()"


def _plain(v: AnyValue) -> str:
    which = v.WhichOneof("value")
    if which == "string_value":
        return f'"{v.string_value}"'
    if which == "bool_value":
        return "true" if v.bool_value else "false"
    if which in ("int_value", "double_value"):
        return str(getattr(v, which))
    return value(v)


def attributes(out: list[str], title: str, attrs: Iterable[KeyValue], indent: int = 5) -> None:
    attrs = list(attrs)
    if not attrs:
        return
    out.append(f"{title}:")
    pad = " " * indent
    out.extend(f"{pad}-> {kv.key}: {value(kv.value)}" for kv in attrs)


def traces(req: ExportTraceServiceRequest) -> str:
    out: list[str] = []
    for i, rs in enumerate(req.resource_spans):
        out.append(f"ResourceSpans #{i}")
        out.append(f"Resource SchemaURL: {rs.schema_url}")
        attributes(out, "Resource attributes", rs.resource.attributes)
        for j, ss in enumerate(rs.scope_spans):
            out.append(f"ScopeSpans #{j}")
            out.append(f"ScopeSpans SchemaURL: {ss.schema_url}")
            out.append(f"InstrumentationScope {ss.scope.name} {ss.scope.version}".rstrip())
            attributes(out, "InstrumentationScope attributes", ss.scope.attributes)
            for k, sp in enumerate(ss.spans):
                out.append(f"Span #{k}")
                out.append(f"    Trace ID       : {sp.trace_id.hex()}")
                out.append(f"    Parent ID      : {sp.parent_span_id.hex()}")
                out.append(f"    ID             : {sp.span_id.hex()}")
                out.append(f"    Name           : {sp.name}")
                out.append(f"    Kind           : {_name(SPAN_KINDS, sp.kind)}")
                out.append(f"    Start time     : {timestamp(sp.start_time_unix_nano)}")
                out.append(f"    End time       : {timestamp(sp.end_time_unix_nano)}")
                out.append(f"    Status code    : {_name(STATUS_CODES, sp.status.code)}")
                out.append(f"    Status message : {sp.status.message}")
                attributes(out, "Attributes", sp.attributes)
                if sp.events:
                    out.append("Events:")
                for e, ev in enumerate(sp.events):
                    out.append(f"SpanEvent #{e}")
                    out.append(f"     -> Name: {ev.name}")
                    out.append(f"     -> Timestamp: {timestamp(ev.time_unix_nano)}")
                    out.append(f"     -> DroppedAttributesCount: {ev.dropped_attributes_count}")
                    attributes(out, "     -> Attributes:", ev.attributes, indent=10)
                if sp.links:
                    out.append("Links:")
                for n, link in enumerate(sp.links):
                    out.append(f"SpanLink #{n}")
                    out.append(f"     -> Trace ID: {link.trace_id.hex()}")
                    out.append(f"     -> ID: {link.span_id.hex()}")
                    out.append(f"     -> TraceState: {link.trace_state}")
                    out.append(f"     -> DroppedAttributesCount: {link.dropped_attributes_count}")
                    attributes(out, "     -> Attributes:", link.attributes, indent=10)
    return "\n".join(out) + "\n"


def metrics(req: ExportMetricsServiceRequest) -> str:
    out: list[str] = []
    for i, rm in enumerate(req.resource_metrics):
        out.append(f"ResourceMetrics #{i}")
        out.append(f"Resource SchemaURL: {rm.schema_url}")
        attributes(out, "Resource attributes", rm.resource.attributes)
        for j, sm in enumerate(rm.scope_metrics):
            out.append(f"ScopeMetrics #{j}")
            out.append(f"ScopeMetrics SchemaURL: {sm.schema_url}")
            out.append(f"InstrumentationScope {sm.scope.name} {sm.scope.version}".rstrip())
            for k, m in enumerate(sm.metrics):
                _metric(out, k, m)
    return "\n".join(out) + "\n"


def _metric(out: list[str], k: int, m) -> None:  # type: ignore[no-untyped-def]
    which = m.WhichOneof("data")
    out.append(f"Metric #{k}")
    out.append("Descriptor:")
    out.append(f"     -> Name: {m.name}")
    out.append(f"     -> Description: {m.description}")
    out.append(f"     -> Unit: {m.unit}")
    kind = {
        "gauge": "Gauge",
        "sum": "Sum",
        "histogram": "Histogram",
        "exponential_histogram": "ExponentialHistogram",
        "summary": "Summary",
    }.get(which or "", "Empty")
    out.append(f"     -> DataType: {kind}")
    if which is None:
        return
    data = getattr(m, which)
    if which == "sum":
        out.append(f"     -> IsMonotonic: {'true' if data.is_monotonic else 'false'}")
    if which in ("sum", "histogram", "exponential_histogram"):
        temporality = _name(TEMPORALITY, data.aggregation_temporality)
        out.append(f"     -> AggregationTemporality: {temporality}")
    label = {
        "gauge": "NumberDataPoints",
        "sum": "NumberDataPoints",
        "histogram": "HistogramDataPoints",
        "exponential_histogram": "ExponentialHistogramDataPoints",
        "summary": "SummaryDataPoints",
    }[which]
    for n, p in enumerate(data.data_points):
        out.append(f"{label} #{n}")
        attributes(out, "Data point attributes", p.attributes)
        out.append(f"StartTimestamp: {timestamp(p.start_time_unix_nano)}")
        out.append(f"Timestamp: {timestamp(p.time_unix_nano)}")
        if label == "NumberDataPoints":
            v = p.as_int if p.WhichOneof("value") == "as_int" else f"{p.as_double:g}"
            out.append(f"Value: {v}")
        elif label == "HistogramDataPoints":
            out.append(f"Count: {p.count}")
            out.append(f"Sum: {p.sum:g}")
            if p.HasField("min"):
                out.append(f"Min: {p.min:g}")
            if p.HasField("max"):
                out.append(f"Max: {p.max:g}")
            out.extend(f"ExplicitBounds #{b}: {v:g}" for b, v in enumerate(p.explicit_bounds))
            out.extend(f"Buckets #{b}, Count: {c}" for b, c in enumerate(p.bucket_counts))
        elif label == "SummaryDataPoints":
            out.append(f"Count: {p.count}")
            out.append(f"Sum: {p.sum:g}")
            for q, qv in enumerate(p.quantile_values):
                out.append(f"QuantileValue #{q}: Quantile {qv.quantile:g}, Value {qv.value:g}")
        else:
            out.append(f"Count: {p.count}")
            out.append(f"Sum: {p.sum:g}")
            out.append(f"Scale: {p.scale}")
            out.append(f"ZeroCount: {p.zero_count}")


def _name(names: list[str], i: int) -> str:
    return names[i] if 0 <= i < len(names) else str(i)
