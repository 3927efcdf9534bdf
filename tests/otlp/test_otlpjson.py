"""OTLP/JSON codec: the spec's own example, its spelling rules, and a property test that
decode → encode → decode is stable for any request."""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Exemplar,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from otel_goblock.receivers.otlp import otlpjson

# The example of the OTLP repository (examples/trace.json), ids in upper-case hex.
SPEC_EXAMPLE = b"""{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeSpans": [{
      "scope": {"name": "my.library", "version": "1.0.0",
                "attributes": [{"key": "my.scope.attribute",
                                "value": {"stringValue": "some scope attribute"}}]},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": "I'm a server span",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "kind": 2,
        "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}}]
      }]
    }]
  }]
}"""


def test_spec_example_decodes_with_hex_ids() -> None:
    req = otlpjson.decode_traces(SPEC_EXAMPLE)
    span = req.resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes.fromhex("5b8efff798038103d269b633813fc60c")
    assert span.span_id == bytes.fromhex("eee19b7ec3c1b174")
    assert span.parent_span_id == bytes.fromhex("eee19b7ec3c1b173")
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.start_time_unix_nano == 1544712660000000000
    assert req.resource_spans[0].scope_spans[0].scope.version == "1.0.0"


def test_encode_writes_lower_hex_ids_camel_case_and_integer_enums() -> None:
    obj = orjson.loads(otlpjson.encode_traces(otlpjson.decode_traces(SPEC_EXAMPLE)))
    span = obj["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == "5b8efff798038103d269b633813fc60c"
    assert span["spanId"] == "eee19b7ec3c1b174"
    assert span["parentSpanId"] == "eee19b7ec3c1b173"
    assert span["kind"] == 2
    assert span["startTimeUnixNano"] == "1544712660000000000"


def test_decode_accepts_enum_names_numbers_proto_names_and_ignores_unknown_fields() -> None:
    body = orjson.dumps(
        {
            "resource_spans": [
                {
                    "scope_spans": [
                        {
                            "spans": [
                                {
                                    "trace_id": "0102030405060708090a0b0c0d0e0f10",
                                    "span_id": "0102030405060708",
                                    "kind": "SPAN_KIND_CLIENT",
                                    "startTimeUnixNano": 1544712660000000000,
                                    "status": {"code": "STATUS_CODE_ERROR"},
                                    "links": [{"traceId": "", "spanId": "1112131415161718"}],
                                    "someFutureField": {"x": 1},
                                }
                            ]
                        }
                    ],
                    "futureTopLevel": 7,
                }
            ]
        }
    )
    span = otlpjson.decode_traces(body).resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == bytes(range(1, 17))
    assert span.kind == Span.SPAN_KIND_CLIENT
    assert span.status.code == Status.STATUS_CODE_ERROR
    assert span.start_time_unix_nano == 1544712660000000000
    assert span.links[0].trace_id == b"" and span.links[0].span_id == bytes(range(17, 25))


def test_metric_exemplar_ids_are_hex() -> None:
    req = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                scope_metrics=[
                    ScopeMetrics(
                        metrics=[
                            Metric(
                                name="m",
                                sum=Sum(
                                    data_points=[
                                        NumberDataPoint(
                                            as_int=3,
                                            exemplars=[
                                                Exemplar(
                                                    as_double=1.5,
                                                    trace_id=bytes(range(16)),
                                                    span_id=bytes(range(8)),
                                                )
                                            ],
                                        )
                                    ]
                                ),
                            )
                        ]
                    )
                ]
            )
        ]
    )
    obj = orjson.loads(otlpjson.encode_metrics(req))
    ex = obj["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"]["dataPoints"][0]
    assert ex["exemplars"][0]["traceId"] == bytes(range(16)).hex()
    assert ex["exemplars"][0]["spanId"] == bytes(range(8)).hex()
    assert otlpjson.decode_metrics(orjson.dumps(obj)) == req


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'"x"',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "xyz"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "00"}]}]}]}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"startTimeUnixNano": "soon"}]}]}]}',
        b'{"resourceSpans": {"not": "a list"}}',
    ],
)
def test_invalid_bodies_raise_otlpjson_error(body: bytes) -> None:
    with pytest.raises(otlpjson.OTLPJSONError):
        otlpjson.decode_traces(body)


# ----------------------------------------------------------------- property tests

text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
u64 = st.integers(min_value=0, max_value=2**64 - 1)
trace_ids = st.one_of(st.just(b""), st.binary(min_size=16, max_size=16))
span_ids = st.one_of(st.just(b""), st.binary(min_size=8, max_size=8))
doubles = st.floats(allow_nan=False)  # NaN != NaN would fail equality, not the codec

any_values = st.recursive(
    st.one_of(
        text.map(lambda s: AnyValue(string_value=s)),
        st.booleans().map(lambda b: AnyValue(bool_value=b)),
        st.integers(min_value=-(2**63), max_value=2**63 - 1).map(lambda i: AnyValue(int_value=i)),
        doubles.map(lambda d: AnyValue(double_value=d)),
        st.binary(max_size=8).map(lambda b: AnyValue(bytes_value=b)),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda v: AnyValue(array_value=ArrayValue(values=v))),
        st.lists(st.tuples(text, inner), max_size=3).map(
            lambda kv: AnyValue(
                kvlist_value=KeyValueList(values=[KeyValue(key=k, value=v) for k, v in kv])
            )
        ),
    ),
    max_leaves=6,
)
attributes = st.lists(st.builds(KeyValue, key=text, value=any_values), max_size=4)

spans = st.builds(
    Span,
    trace_id=trace_ids,
    span_id=span_ids,
    parent_span_id=span_ids,
    trace_state=text,
    name=text,
    kind=st.integers(0, 5),
    start_time_unix_nano=u64,
    end_time_unix_nano=u64,
    attributes=attributes,
    flags=st.integers(0, 2**32 - 1),
    events=st.lists(
        st.builds(Span.Event, time_unix_nano=u64, name=text, attributes=attributes), max_size=2
    ),
    links=st.lists(
        st.builds(Span.Link, trace_id=trace_ids, span_id=span_ids, attributes=attributes),
        max_size=2,
    ),
    status=st.builds(Status, code=st.integers(0, 2), message=text),
)
trace_requests = st.builds(
    ExportTraceServiceRequest,
    resource_spans=st.lists(
        st.builds(
            ResourceSpans,
            resource=st.builds(Resource, attributes=attributes),
            scope_spans=st.lists(
                st.builds(
                    ScopeSpans,
                    scope=st.builds(InstrumentationScope, name=text, version=text),
                    spans=st.lists(spans, max_size=3),
                ),
                max_size=2,
            ),
            schema_url=text,
        ),
        max_size=2,
    ),
)

exemplars = st.lists(
    st.builds(
        Exemplar, time_unix_nano=u64, as_double=doubles, trace_id=trace_ids, span_id=span_ids
    ),
    max_size=2,
)
number_points = st.lists(
    st.one_of(
        st.builds(
            NumberDataPoint,
            attributes=attributes,
            time_unix_nano=u64,
            as_double=doubles,
            exemplars=exemplars,
        ),
        st.builds(
            NumberDataPoint,
            start_time_unix_nano=u64,
            as_int=st.integers(-(2**63), 2**63 - 1),
            exemplars=exemplars,
        ),
    ),
    max_size=3,
)
metrics = st.one_of(
    st.builds(Metric, name=text, unit=text, gauge=st.builds(Gauge, data_points=number_points)),
    st.builds(
        Metric,
        name=text,
        sum=st.builds(
            Sum,
            data_points=number_points,
            aggregation_temporality=st.integers(0, 2),
            is_monotonic=st.booleans(),
        ),
    ),
    st.builds(
        Metric,
        name=text,
        histogram=st.builds(
            Histogram,
            aggregation_temporality=st.integers(0, 2),
            data_points=st.lists(
                st.builds(
                    HistogramDataPoint,
                    count=u64,
                    sum=doubles,
                    bucket_counts=st.lists(u64, max_size=4),
                    explicit_bounds=st.lists(doubles, max_size=3),
                    exemplars=exemplars,
                ),
                max_size=2,
            ),
        ),
    ),
)
metric_requests = st.builds(
    ExportMetricsServiceRequest,
    resource_metrics=st.lists(
        st.builds(
            ResourceMetrics,
            resource=st.builds(Resource, attributes=attributes),
            scope_metrics=st.lists(
                st.builds(ScopeMetrics, metrics=st.lists(metrics, max_size=3)), max_size=2
            ),
        ),
        max_size=2,
    ),
)

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(trace_requests)
def test_traces_round_trip_is_stable(req: ExportTraceServiceRequest) -> None:
    first = otlpjson.encode_traces(req)
    decoded = otlpjson.decode_traces(first)
    assert decoded == req
    assert otlpjson.encode_traces(decoded) == first
    assert otlpjson.decode_traces(otlpjson.encode_traces(decoded)) == decoded


@PROPERTY
@given(metric_requests)
def test_metrics_round_trip_is_stable(req: ExportMetricsServiceRequest) -> None:
    first = otlpjson.encode_metrics(req)
    decoded = otlpjson.decode_metrics(first)
    assert decoded == req
    assert otlpjson.encode_metrics(decoded) == first


# ------------------------------------------------- same answers as google.protobuf.json_format


def _walk_ids(obj: Any, fix: Any) -> None:
    """Apply `fix` to every id string at the places OTLP/JSON writes them as hex."""
    for rs in obj.get("resourceSpans", ()):
        for ss in rs.get("scopeSpans", ()):
            for span in ss.get("spans", ()):
                fix(span, ("traceId", "spanId", "parentSpanId"))
                for link in span.get("links", ()):
                    fix(link, ("traceId", "spanId"))
    for rm in obj.get("resourceMetrics", ()):
        for sm in rm.get("scopeMetrics", ()):
            for metric in sm.get("metrics", ()):
                for kind in ("gauge", "sum", "histogram", "exponentialHistogram"):
                    for dp in metric.get(kind, {}).get("dataPoints", ()):
                        for ex in dp.get("exemplars", ()):
                            fix(ex, ("traceId", "spanId"))


def _b64_to_hex(d: dict[str, Any], keys: tuple[str, ...]) -> None:
    for k in keys:
        if d.get(k):
            d[k] = base64.b64decode(d[k]).hex()


def _hex_to_b64(d: dict[str, Any], keys: tuple[str, ...]) -> None:
    for k in keys:
        if d.get(k):
            d[k] = base64.b64encode(bytes.fromhex(d[k])).decode()


def reference_encode(msg: Any) -> dict[str, Any]:
    """What json_format writes, with the OTLP hex ids: the codec must match it exactly."""
    obj = json_format.MessageToDict(msg, use_integers_for_enums=True)
    _walk_ids(obj, _b64_to_hex)
    return obj


def reference_decode(body: bytes, cls: Any) -> Any:
    obj = orjson.loads(body)
    _walk_ids(obj, _hex_to_b64)
    return json_format.ParseDict(obj, cls())


@PROPERTY
@given(trace_requests)
def test_traces_codec_matches_json_format(req: ExportTraceServiceRequest) -> None:
    assert orjson.loads(otlpjson.encode_traces(req)) == orjson.loads(
        orjson.dumps(reference_encode(req))
    )
    body = orjson.dumps(reference_encode(req))
    assert otlpjson.decode_traces(body) == reference_decode(body, ExportTraceServiceRequest)


@PROPERTY
@given(metric_requests)
def test_metrics_codec_matches_json_format(req: ExportMetricsServiceRequest) -> None:
    assert orjson.loads(otlpjson.encode_metrics(req)) == orjson.loads(
        orjson.dumps(reference_encode(req))
    )
    body = orjson.dumps(reference_encode(req))
    assert otlpjson.decode_metrics(body) == reference_decode(body, ExportMetricsServiceRequest)


def test_error_names_the_key_path() -> None:
    body = b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"links": [{"spanId": "12"}]}]}]}]}'
    with pytest.raises(otlpjson.OTLPJSONError) as e:
        otlpjson.decode_traces(body)
    assert str(e.value).startswith("resourceSpans.scopeSpans.spans.links.spanId: expected 16 hex")


def test_two_members_of_a_oneof_are_refused() -> None:
    kv = {"key": "k", "value": {"stringValue": "a", "intValue": "3"}}
    body = orjson.dumps({"resourceSpans": [{"resource": {"attributes": [kv]}}]})
    with pytest.raises(otlpjson.OTLPJSONError, match="more than one"):
        otlpjson.decode_traces(body)


def test_deep_nesting_is_refused_not_a_crash() -> None:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(80):  # 160 message levels (orjson writes at most 255 JSON levels)
        value = {"arrayValue": {"values": [value]}}
    body = orjson.dumps(
        {"resourceSpans": [{"resource": {"attributes": [{"key": "k", "value": value}]}}]}
    )
    with pytest.raises(otlpjson.OTLPJSONError, match="nested deeper"):
        otlpjson.decode_traces(body)


def test_special_floats_and_base64_bytes() -> None:
    body = orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {
                        "attributes": [
                            {"key": "a", "value": {"doubleValue": "NaN"}},
                            {"key": "b", "value": {"doubleValue": "-Infinity"}},
                            {"key": "c", "value": {"bytesValue": "AQID"}},
                            {"key": "d", "value": {"bytesValue": "-_8"}},  # URL-safe, unpadded
                            {"key": "e", "value": {"intValue": 7}},
                        ]
                    }
                }
            ]
        }
    )
    attrs = otlpjson.decode_traces(body).resource_spans[0].resource.attributes
    assert math.isnan(attrs[0].value.double_value)
    assert attrs[1].value.double_value == -math.inf
    assert attrs[2].value.bytes_value == b"\x01\x02\x03"
    assert attrs[3].value.bytes_value == b"\xfb\xff"
    assert attrs[4].value.int_value == 7
    out = orjson.loads(otlpjson.encode_traces(otlpjson.decode_traces(body)))
    values = [a["value"] for a in out["resourceSpans"][0]["resource"]["attributes"]]
    assert values[:3] == [
        {"doubleValue": "NaN"},
        {"doubleValue": "-Infinity"},
        {"bytesValue": "AQID"},
    ]
    assert values[4] == {"intValue": "7"}


# ---------------------------------------------------------- hostile input: only OTLPJSONError
# OTLP-shaped JSON (the right keys at the right levels, so the decoder gets deep) whose
# leaves are sometimes right and often wrong: wrong types, bad hex, out-of-range numbers.

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=20),
    st.binary(min_size=8, max_size=8).map(bytes.hex),
    st.binary(min_size=16, max_size=16).map(bytes.hex),
    st.sampled_from(
        ["NaN", "Infinity", "-1", "18446744073709551616", "SPAN_KIND_SERVER", "AQID", "=="]
    ),
    st.lists(st.integers(), max_size=2),
    st.just({}),
)


def opt(**fields: Any) -> Any:
    return st.fixed_dictionaries({}, optional=fields)


def listof(x: Any) -> Any:
    return st.lists(x, max_size=3) | leaf


anyvalue = st.recursive(
    opt(stringValue=leaf, intValue=leaf, doubleValue=leaf, boolValue=leaf, bytesValue=leaf),
    lambda inner: opt(
        arrayValue=opt(values=listof(inner)),
        kvlistValue=opt(values=listof(opt(key=leaf, value=inner))),
    ),
    max_leaves=6,
)
kvs = listof(opt(key=leaf, value=anyvalue | leaf))
span_json = opt(
    traceId=leaf,
    spanId=leaf,
    parentSpanId=leaf,
    name=leaf,
    kind=leaf,
    flags=leaf,
    startTimeUnixNano=leaf,
    endTimeUnixNano=leaf,
    attributes=kvs,
    events=listof(opt(name=leaf, timeUnixNano=leaf, attributes=kvs)),
    links=listof(opt(traceId=leaf, spanId=leaf, attributes=kvs)),
    status=opt(code=leaf, message=leaf) | leaf,
)
traces_json = opt(
    resourceSpans=listof(
        opt(
            resource=opt(attributes=kvs),
            scopeSpans=listof(opt(scope=opt(name=leaf, version=leaf), spans=listof(span_json))),
        )
    )
)
exemplar_json = opt(traceId=leaf, spanId=leaf, asDouble=leaf, asInt=leaf, timeUnixNano=leaf)
number_dp = opt(
    asInt=leaf, asDouble=leaf, timeUnixNano=leaf, attributes=kvs, exemplars=listof(exemplar_json)
)
hist_dp = opt(
    count=leaf, sum=leaf, bucketCounts=leaf, explicitBounds=leaf, exemplars=listof(exemplar_json)
)
metrics_json = opt(
    resourceMetrics=listof(
        opt(
            scopeMetrics=listof(
                opt(
                    metrics=listof(
                        opt(
                            name=leaf,
                            gauge=opt(dataPoints=listof(number_dp)),
                            sum=opt(
                                dataPoints=listof(number_dp),
                                isMonotonic=leaf,
                                aggregationTemporality=leaf,
                            ),
                            histogram=opt(dataPoints=listof(hist_dp)),
                        )
                    )
                )
            )
        )
    )
)


def _decodes_or_refuses(decode: Any, encode: Any, obj: Any) -> None:
    try:
        msg = decode(json.dumps(obj).encode())
    except otlpjson.OTLPJSONError:
        return
    # accepted: then it survives a round trip (compared as bytes: NaN != NaN)
    assert decode(encode(msg)).SerializeToString() == msg.SerializeToString()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(traces_json)
def test_hostile_traces_json_decodes_or_raises_otlpjson_error(obj: Any) -> None:
    _decodes_or_refuses(otlpjson.decode_traces, otlpjson.encode_traces, obj)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(metrics_json)
def test_hostile_metrics_json_decodes_or_raises_otlpjson_error(obj: Any) -> None:
    _decodes_or_refuses(otlpjson.decode_metrics, otlpjson.encode_metrics, obj)
