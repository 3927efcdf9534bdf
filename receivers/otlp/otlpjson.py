"""OTLP/JSON: ExportTraceServiceRequest / ExportMetricsServiceRequest to and from JSON.

OTLP/JSON is proto3 JSON with three differences (OTLP spec, "JSON Protobuf Encoding"):
trace and span ids are hex strings (proto3 JSON would write bytes as base64), keys are
lowerCamelCase (the parser also accepts the proto field names), enums may be integers or
names (we write integers, as the spec asks), and unknown fields must be ignored.

Why this shape: `google.protobuf.json_format` already knows every OTLP message, and
rewriting only the id fields is far less code than a schema-aware converter. The ids
live at known places (spans, span links, metric exemplars), so the fix-up walks exactly
those paths on the plain dict (orjson, C speed) rather than the whole tree.

Used by the otlp receiver (decode) and the file exporter (encode).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8

# (camelCase, proto name) pairs: proto3 JSON parsers accept both spellings
_TRACE_ID = ("traceId", "trace_id")
_SPAN_ID = ("spanId", "span_id")
_PARENT_SPAN_ID = ("parentSpanId", "parent_span_id")
_METRIC_KINDS = (
    ("gauge", "gauge"),
    ("sum", "sum"),
    ("histogram", "histogram"),
    ("exponentialHistogram", "exponential_histogram"),
)


class OTLPJSONError(ValueError):
    """The body is not a valid OTLP/JSON request (the message says what and where)."""


# ---------------------------------------------------------------- decode (JSON → proto)


def decode_traces(data: bytes | str) -> ExportTraceServiceRequest:
    obj = _load_object(data)
    for rs in _items(obj, ("resourceSpans", "resource_spans")):
        for ss in _items(rs, ("scopeSpans", "scope_spans")):
            for span in _items(ss, ("spans", "spans")):
                _hex_to_b64(span, _TRACE_ID, TRACE_ID_BYTES, "traceId")
                _hex_to_b64(span, _SPAN_ID, SPAN_ID_BYTES, "spanId")
                _hex_to_b64(span, _PARENT_SPAN_ID, SPAN_ID_BYTES, "parentSpanId")
                for link in _items(span, ("links", "links")):
                    _hex_to_b64(link, _TRACE_ID, TRACE_ID_BYTES, "links.traceId")
                    _hex_to_b64(link, _SPAN_ID, SPAN_ID_BYTES, "links.spanId")
    return _parse(obj, ExportTraceServiceRequest())


def decode_metrics(data: bytes | str) -> ExportMetricsServiceRequest:
    obj = _load_object(data)
    for ex in _exemplars(obj):
        _hex_to_b64(ex, _TRACE_ID, TRACE_ID_BYTES, "exemplars.traceId")
        _hex_to_b64(ex, _SPAN_ID, SPAN_ID_BYTES, "exemplars.spanId")
    return _parse(obj, ExportMetricsServiceRequest())


def _load_object(data: bytes | str) -> dict[str, Any]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise OTLPJSONError(f"invalid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise OTLPJSONError(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _items(obj: Any, keys: tuple[str, str]) -> list[Any]:
    """The list under either spelling; anything malformed is left for json_format to name."""
    if not isinstance(obj, dict):
        return []
    value = obj.get(keys[0])
    if value is None:
        value = obj.get(keys[1])
    return value if isinstance(value, list) else []


def _exemplars(obj: dict[str, Any]) -> Any:
    for rm in _items(obj, ("resourceMetrics", "resource_metrics")):
        for sm in _items(rm, ("scopeMetrics", "scope_metrics")):
            for metric in _items(sm, ("metrics", "metrics")):
                if not isinstance(metric, dict):
                    continue
                for camel, snake in _METRIC_KINDS:
                    data = metric.get(camel, metric.get(snake))
                    for dp in _items(data, ("dataPoints", "data_points")):
                        yield from _items(dp, ("exemplars", "exemplars"))


def _hex_to_b64(obj: Any, keys: tuple[str, str], nbytes: int, where: str) -> None:
    if not isinstance(obj, dict):
        return
    for key in keys:
        value = obj.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or len(value) != 2 * nbytes:
            raise OTLPJSONError(
                f"{where}: expected {2 * nbytes} hex digits or an empty string, got {value!r}"
            )
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if len(raw) != nbytes:
            raise OTLPJSONError(f"{where}: expected {2 * nbytes} hex digits, got {value!r}")
        obj[key] = base64.b64encode(raw).decode("ascii")


def _parse(obj: dict[str, Any], msg: Message) -> Any:
    try:
        json_format.ParseDict(obj, msg, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as e:
        raise OTLPJSONError(f"not an OTLP request: {e}") from None
    return msg


# ---------------------------------------------------------------- encode (proto → JSON)


def encode_traces(req: ExportTraceServiceRequest) -> bytes:
    """One JSON document (no newline), ids as hex, enums as integers."""
    obj = _to_dict(req)
    for rs in obj.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                _b64_to_hex(span, ("traceId", "spanId", "parentSpanId"))
                for link in span.get("links", ()):
                    _b64_to_hex(link, ("traceId", "spanId"))
    return orjson.dumps(obj)


def encode_metrics(req: ExportMetricsServiceRequest) -> bytes:
    obj = _to_dict(req)
    for ex in _exemplars(obj):
        _b64_to_hex(ex, ("traceId", "spanId"))
    return orjson.dumps(obj)


def _to_dict(msg: Message) -> dict[str, Any]:
    return json_format.MessageToDict(msg, use_integers_for_enums=True)


def _b64_to_hex(obj: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        value = obj.get(key)
        if value:
            obj[key] = base64.b64decode(value).hex()
