"""Bad requests get their specific status, and the server keeps serving afterwards."""

from __future__ import annotations

import gzip
import resource
import zlib
from typing import Any

import grpc
import pytest
import requests
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from otel_goblock.receivers.otlp import otlpjson

from otel_goblock.consumer import PermanentError, RetryableError

from .conftest import both

TRACES = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
METRICS = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
PB = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
GARBAGE = b"\xff" * 64  # field 0x1fffffff... with wire type 7: never valid protobuf


def request(n_spans: int = 3, attr_bytes: int = 0) -> ExportTraceServiceRequest:
    spans = [
        Span(
            trace_id=bytes(range(16)),
            span_id=(i + 1).to_bytes(8, "big"),
            name=f"s{i}",
            start_time_unix_nano=1_700_000_000_000_000_000 + i,
            end_time_unix_nano=1_700_000_000_000_001_000 + i,
            attributes=[KeyValue(key="pad", value={"string_value": "x" * attr_bytes})],
        )
        for i in range(n_spans)
    ]
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )


GOOD = request().SerializeToString()


def truncated() -> bytes:
    raw = GOOD[: len(GOOD) // 2]
    with pytest.raises(Exception):  # noqa: B017 - precondition: really not decodable
        ExportTraceServiceRequest.FromString(raw)
    return raw


# ------------------------------------------------------------------------------ gRPC


def grpc_call(target: str, body: bytes, method: str = TRACES, **kw: Any) -> grpc.Call:
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", -1)]) as ch:
        call = ch.unary_unary(method, request_serializer=None, response_deserializer=None)
        try:
            _, c = call.with_call(body, timeout=10, **kw)
            return c
        except grpc.RpcError as e:
            return e


def assert_grpc_serving(r: Any) -> None:
    before = len(r.consumer.traces)
    c = grpc_call(r.grpc_target, GOOD)
    assert c.code() == grpc.StatusCode.OK
    assert len(r.consumer.traces) == before + 1


@pytest.mark.parametrize(
    ("name", "body"), [("garbage", GARBAGE), ("truncated", None)], ids=["garbage", "truncated"]
)
def test_grpc_malformed_protobuf_is_invalid_argument(receiver: Any, name: str, body: Any) -> None:
    for method in (TRACES, METRICS):
        c = grpc_call(receiver.grpc_target, body if body is not None else truncated(), method)
        assert c.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert "invalid" in c.details()
    assert receiver.consumer.traces == [] and receiver.consumer.metrics == []
    assert_grpc_serving(receiver)


def test_grpc_empty_request_is_ok_without_downstream_call(receiver: Any) -> None:
    for body in (
        b"",
        ExportTraceServiceRequest(resource_spans=[ResourceSpans()]).SerializeToString(),
    ):
        assert grpc_call(receiver.grpc_target, body).code() == grpc.StatusCode.OK
        assert grpc_call(receiver.grpc_target, body, METRICS).code() == grpc.StatusCode.OK
    assert receiver.consumer.traces == [] and receiver.consumer.metrics == []


def test_grpc_over_max_recv_msg_size_is_resource_exhausted(start_receiver: Any) -> None:
    r = start_receiver(both(grpc={"max_recv_msg_size_mib": 1}))
    big = request(n_spans=2, attr_bytes=600_000).SerializeToString()
    assert len(big) > 1024 * 1024
    assert grpc_call(r.grpc_target, big).code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # compressed it is small on the wire; the limit applies after decompression
    assert len(gzip.compress(big)) < 100_000
    c = grpc_call(r.grpc_target, big, compression=grpc.Compression.Gzip)
    assert c.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert r.consumer.traces == []
    assert_grpc_serving(r)
    ok = request(n_spans=1, attr_bytes=900_000).SerializeToString()
    assert (
        grpc_call(r.grpc_target, ok, compression=grpc.Compression.Gzip).code() == grpc.StatusCode.OK
    )


def status_details(c: grpc.RpcError) -> status_pb2.Status:
    (raw,) = [v for k, v in c.trailing_metadata() if k == "grpc-status-details-bin"]
    return status_pb2.Status.FromString(raw)


def test_grpc_retryable_consumer_error_is_unavailable_with_retry_info(receiver: Any) -> None:
    receiver.consumer.fail = RetryableError("memory limit reached", retry_after_s=2.5)
    c = grpc_call(receiver.grpc_target, GOOD)
    assert c.code() == grpc.StatusCode.UNAVAILABLE
    assert "memory limit" in c.details()
    st = status_details(c)
    assert st.code == code_pb2.UNAVAILABLE
    info = error_details_pb2.RetryInfo()
    assert st.details[0].Unpack(info)
    assert (info.retry_delay.seconds, info.retry_delay.nanos) == (2, 500_000_000)
    # the same RetryInfo alone, where the OTel Python SDK exporter looks for it
    (alone,) = [v for k, v in c.trailing_metadata() if k == "google.rpc.retryinfo-bin"]
    assert error_details_pb2.RetryInfo.FromString(alone) == info
    assert receiver.counter("otelcol_receiver_refused_spans", "grpc") == 3
    assert receiver.counter("otelcol_receiver_accepted_spans", "grpc") == 0
    receiver.consumer.fail = None
    assert_grpc_serving(receiver)
    assert receiver.counter("otelcol_receiver_accepted_spans", "grpc") == 3


def test_grpc_permanent_consumer_error_is_invalid_argument(receiver: Any) -> None:
    receiver.consumer.fail = PermanentError("never")
    c = grpc_call(receiver.grpc_target, GOOD)
    assert c.code() == grpc.StatusCode.INVALID_ARGUMENT
    receiver.consumer.fail = None
    assert_grpc_serving(receiver)


def test_grpc_unexpected_consumer_exception_is_retryable(receiver: Any) -> None:
    """As in the collector: only an explicit PermanentError makes the client drop data."""
    receiver.consumer.fail = RuntimeError("bug in a processor")
    c = grpc_call(receiver.grpc_target, GOOD)
    assert c.code() == grpc.StatusCode.UNAVAILABLE
    receiver.consumer.fail = None
    assert_grpc_serving(receiver)


def test_grpc_signal_without_pipeline_is_unimplemented(start_receiver: Any) -> None:
    r = start_receiver(signals=("traces",))
    metrics = ExportMetricsServiceRequest().SerializeToString()
    assert grpc_call(r.grpc_target, metrics, METRICS).code() == grpc.StatusCode.UNIMPLEMENTED
    assert requests.post(r.http_url("/v1/metrics"), data=b"", headers=PB).status_code == 404


# ------------------------------------------------------------------------------ HTTP


def post(r: Any, body: bytes, headers: dict[str, str], path: str = "/v1/traces") -> Any:
    return requests.post(r.http_url(path), data=body, headers=headers, timeout=30)


def assert_http_serving(r: Any) -> None:
    before = len(r.consumer.traces)
    assert post(r, GOOD, PB).status_code == 200
    assert len(r.consumer.traces) == before + 1


def pb_status(resp: Any) -> status_pb2.Status:
    assert resp.headers["Content-Type"].startswith("application/x-protobuf")
    return status_pb2.Status.FromString(resp.content)


@pytest.mark.parametrize("path", ["/v1/traces", "/v1/metrics"])
def test_http_garbage_and_truncated_protobuf_are_400_with_status(receiver: Any, path: str) -> None:
    for body in (GARBAGE, truncated()):
        resp = post(receiver, body, PB, path)
        assert resp.status_code == 400
        st = pb_status(resp)
        assert st.code == code_pb2.INVALID_ARGUMENT and "invalid" in st.message
    assert_http_serving(receiver)


def test_http_invalid_json_is_400_with_json_status(receiver: Any) -> None:
    for body in (
        b"{not json",
        b"[1, 2]",
        b'{"resourceSpans": 7}',
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5, "kind": "NOPE"}]}]}]}',
    ):
        resp = post(receiver, body, JSON)
        assert resp.status_code == 400, body
        assert resp.headers["Content-Type"].startswith("application/json")
        st = resp.json()
        assert st["code"] == code_pb2.INVALID_ARGUMENT and st["message"]
    assert_http_serving(receiver)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("traceId", "not-hex-at-all-not-hex-at-all-!!"),
        ("traceId", "0102"),  # hex, wrong length
        ("spanId", "zz02030405060708"),
        ("parentSpanId", "010203040506070809"),
        ("traceId", 12),
    ],
)
def test_http_json_with_bad_hex_ids_is_400(receiver: Any, field: str, value: Any) -> None:
    span = {
        "traceId": "0102030405060708090a0b0c0d0e0f10",
        "spanId": "0102030405060708",
        "name": "x",
    }
    span[field] = value
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    resp = requests.post(receiver.http_url(), json=body, timeout=10)
    assert resp.status_code == 400
    assert field in resp.json()["message"]
    assert receiver.consumer.traces == []
    assert_http_serving(receiver)


def test_http_wrong_content_type_is_415(receiver: Any) -> None:
    for ctype in ("text/plain", "application/octet-stream", "application/protobuf"):
        resp = post(receiver, GOOD, {"Content-Type": ctype})
        assert resp.status_code == 415, ctype
        assert "unsupported media type" in resp.text
    resp = requests.post(receiver.http_url(), data=GOOD, timeout=10)  # no Content-Type at all
    assert resp.status_code == 415
    assert_http_serving(receiver)


def test_http_wrong_method_is_405_and_unknown_path_404(receiver: Any) -> None:
    for method in ("GET", "PUT", "DELETE"):
        resp = requests.request(method, receiver.http_url(), timeout=10)
        assert resp.status_code == 405
        assert resp.headers["Allow"] == "POST"
    assert post(receiver, GOOD, PB, "/v1/logs").status_code == 404
    assert_http_serving(receiver)


def test_http_empty_request_is_200_without_downstream_call(receiver: Any) -> None:
    assert post(receiver, b"", PB).content == b""
    assert post(receiver, b"", PB, "/v1/metrics").status_code == 200
    resp = post(receiver, b"{}", JSON)
    assert resp.status_code == 200 and resp.json() == {}
    assert post(receiver, gzip.compress(b""), {**PB, "Content-Encoding": "gzip"}).status_code == 200
    assert receiver.consumer.traces == [] and receiver.consumer.metrics == []


def test_http_oversized_plain_body_is_413(start_receiver: Any) -> None:
    r = start_receiver(both(http={"max_request_body_size": 100_000}))
    big = request(n_spans=2, attr_bytes=60_000).SerializeToString()
    resp = post(r, big, PB)
    assert resp.status_code == 413
    assert pb_status(resp).code == code_pb2.RESOURCE_EXHAUSTED

    def chunked() -> Any:  # no Content-Length: the cap applies while streaming
        yield big[:50_000]
        yield big[50_000:]

    assert post(r, chunked(), PB).status_code == 413
    assert r.consumer.traces == []
    assert_http_serving(r)


def gzip_bomb(member_mib: int = 64, members: int = 16) -> bytes:
    """members x member_mib MiB of zeros: 1 GiB inflated from ~1 MiB (multi-member gzip)."""
    co = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    member = b"".join(co.compress(zeros) for _ in range(member_mib)) + co.flush()
    return member * members


def test_http_gzip_bomb_is_413_without_inflating_it(start_receiver: Any) -> None:
    r = start_receiver(both(http={"max_request_body_size": 4 * 1024 * 1024}))
    bomb = gzip_bomb()
    assert len(bomb) < 2 * 1024 * 1024
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    resp = post(r, bomb, {**PB, "Content-Encoding": "gzip"})
    assert resp.status_code == 413
    assert "decompressed" in pb_status(resp).message
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mib < 200, f"peak RSS grew {grown_mib:.0f} MiB: the bomb was inflated"
    # JSON requests get the status in JSON
    resp = post(r, bomb, {**JSON, "Content-Encoding": "gzip"})
    assert resp.status_code == 413 and resp.json()["code"] == code_pb2.RESOURCE_EXHAUSTED
    assert r.consumer.traces == []
    assert_http_serving(r)


def test_http_bad_compression_is_400(receiver: Any) -> None:
    gz = gzip.compress(GOOD)
    cases = [
        (b"not gzip at all", "gzip"),
        (gz[: len(gz) - 6], "gzip"),  # truncated stream
        (GOOD, "br"),  # unsupported encoding
    ]
    for body, enc in cases:
        resp = post(receiver, body, {**PB, "Content-Encoding": enc})
        assert resp.status_code == 400, (enc, resp.text)
    assert (
        post(receiver, zlib.compress(GOOD), {**PB, "Content-Encoding": "deflate"}).status_code
        == 200
    )
    multi = gzip.compress(GOOD[:10]) + gzip.compress(GOOD[10:])  # two members, one body
    assert post(receiver, multi, {**PB, "Content-Encoding": "gzip"}).status_code == 200
    assert len(receiver.consumer.traces) == 2
    assert receiver.consumer.traces[1].serialized() == GOOD


@pytest.mark.parametrize("ctype", ["application/x-protobuf", "application/json"])
def test_http_retryable_consumer_error_is_503_with_retry_after(receiver: Any, ctype: str) -> None:
    receiver.consumer.fail = RetryableError("queue is full", retry_after_s=2.2)
    body = GOOD if ctype.endswith("protobuf") else otlpjson.encode_traces(request())
    resp = post(receiver, body, {"Content-Type": ctype})
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "3"  # whole seconds, rounded up
    if ctype.endswith("protobuf"):
        st = pb_status(resp)
    else:
        from google.protobuf import json_format

        st = json_format.Parse(resp.text, status_pb2.Status())
    assert st.code == code_pb2.UNAVAILABLE and "queue is full" in st.message
    info = error_details_pb2.RetryInfo()
    assert st.details[0].Unpack(info) and info.retry_delay.seconds == 2
    assert receiver.counter("otelcol_receiver_refused_spans", "http") == 3
    receiver.consumer.fail = PermanentError("bad data")
    assert post(receiver, GOOD, PB).status_code == 400
    receiver.consumer.fail = None
    assert_http_serving(receiver)


def test_refused_metric_points_are_counted_per_transport(receiver: Any) -> None:
    req = ExportMetricsServiceRequest()
    metric = req.resource_metrics.add().scope_metrics.add().metrics.add(name="m")
    for i in range(4):
        metric.gauge.data_points.add(as_int=i, time_unix_nano=1 + i)
    body = req.SerializeToString()
    receiver.consumer.fail = RetryableError("full")
    assert post(receiver, body, PB, "/v1/metrics").status_code == 503
    assert grpc_call(receiver.grpc_target, body, METRICS).code() == grpc.StatusCode.UNAVAILABLE
    receiver.consumer.fail = None
    assert post(receiver, body, PB, "/v1/metrics").status_code == 200
    assert receiver.counter("otelcol_receiver_refused_metric_points", "http") == 4
    assert receiver.counter("otelcol_receiver_refused_metric_points", "grpc") == 4
    assert receiver.counter("otelcol_receiver_accepted_metric_points", "http") == 4
    assert receiver.counter("otelcol_receiver_accepted_metric_points", "grpc") == 0
    assert [m.data_point_count for m in receiver.consumer.metrics] == [4]
