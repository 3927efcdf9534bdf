"""The OTel Python SDK's own OTLP exporters (gRPC and HTTP) deliver spans and metrics
through the receiver unchanged: ids, timestamps, names and attributes identical."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
import requests
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GRPCMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GRPCSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HTTPMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HTTPSpanExporter,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from otel_goblock.receivers.otlp import otlpjson

from otel_goblock.consumer import RetryableError

RESOURCE = Resource.create({"service.name": "checkout", "process.pid": 4242})


def make_spans(n: int = 20) -> list[ReadableSpan]:
    mem = InMemorySpanExporter()
    tp = TracerProvider(resource=RESOURCE)
    tp.add_span_processor(SimpleSpanProcessor(mem))
    tracer = tp.get_tracer("test.scope", "1.2.3")
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.route", "/checkout")
        for i in range(n - 1):
            with tracer.start_as_current_span(
                f"child-{i}",
                kind=SpanKind.CLIENT,
                links=[Link(root.get_span_context(), {"link.i": i})],
            ) as span:
                span.set_attributes(
                    {
                        "i": i,
                        "ratio": i / 7,
                        "ok": i % 2 == 0,
                        "name": f"n{i}",
                        "tags": ["a", "b"],
                        "ints": [1, 2, i],
                    }
                )
                span.add_event("retry", {"attempt": i})
                if i == 3:
                    span.set_status(Status(StatusCode.ERROR, "boom"))
    tp.shutdown()
    spans = list(mem.get_finished_spans())
    assert len(spans) == n
    return spans


def make_metrics() -> MetricsData:
    reader = InMemoryMetricReader()
    mp = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = mp.get_meter("test.meter")
    counter = meter.create_counter("requests")
    hist = meter.create_histogram("latency", unit="ms")
    updown = meter.create_up_down_counter("inflight")
    for i in range(5):
        counter.add(i + 1, {"route": f"/r{i % 2}"})
        hist.record(i * 1.5, {"route": "/r0"})
        updown.add(1 - i)
    data = reader.get_metrics_data()
    mp.shutdown()
    return data


def any_value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which == "array_value":
        return tuple(any_value(x) for x in v.array_value.values)
    return getattr(v, which) if which else None


def attrs(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


def sdk_attrs(a: Any) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in (a or {}).items()}


def received_spans(receiver: Any) -> dict[bytes, Any]:
    out = {}
    for t in receiver.consumer.traces:
        for rs in t.message().resource_spans:
            assert attrs(rs.resource.attributes)["service.name"] == "checkout"
            for ss in rs.scope_spans:
                assert ss.scope.name == "test.scope"
                assert ss.scope.version == "1.2.3"
                for s in ss.spans:
                    assert s.span_id not in out, "a span arrived twice"
                    out[s.span_id] = s
    return out


def assert_same_spans(sent: list[ReadableSpan], got: dict[bytes, Any]) -> None:
    assert len(got) == len(sent)
    for s in sent:
        p = got[s.context.span_id.to_bytes(8, "big")]
        assert p.trace_id == s.context.trace_id.to_bytes(16, "big")
        assert p.parent_span_id == (s.parent.span_id.to_bytes(8, "big") if s.parent else b"")
        assert p.name == s.name
        assert p.kind == s.kind.value + 1  # OTLP enum is SDK's + 1 (0 is UNSPECIFIED)
        assert p.start_time_unix_nano == s.start_time
        assert p.end_time_unix_nano == s.end_time
        assert attrs(p.attributes) == sdk_attrs(s.attributes)
        assert [(e.name, e.time_unix_nano, attrs(e.attributes)) for e in p.events] == [
            (e.name, e.timestamp, sdk_attrs(e.attributes)) for e in s.events
        ]
        assert [(lk.trace_id, lk.span_id, attrs(lk.attributes)) for lk in p.links] == [
            (
                lk.context.trace_id.to_bytes(16, "big"),
                lk.context.span_id.to_bytes(8, "big"),
                sdk_attrs(lk.attributes),
            )
            for lk in s.links
        ]
        assert p.status.code == s.status.status_code.value
        assert p.status.message == (s.status.description or "")


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip])
def test_grpc_exporter_spans_arrive_identical(receiver: Any, compression: Any) -> None:
    spans = make_spans()
    exporter = GRPCSpanExporter(
        endpoint=receiver.grpc_target, insecure=True, timeout=10, compression=compression
    )
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    exporter.shutdown()
    assert_same_spans(spans, received_spans(receiver))
    (t,) = receiver.consumer.traces
    assert t.span_count == len(spans)
    assert t.has_raw(), "the request bytes are kept for pass-through"
    assert t.info.transport == "grpc"
    assert t.info.peer.startswith("127.0.0.1:") and int(t.info.peer.rpartition(":")[2]) > 0
    assert receiver.counter("otelcol_receiver_accepted_spans", "grpc") == len(spans)
    assert receiver.counter("otelcol_receiver_refused_spans", "grpc") == 0


def test_http_exporter_spans_arrive_identical_with_and_without_gzip(receiver: Any) -> None:
    spans = make_spans()
    for compression in (Compression.NoCompression, Compression.Gzip):
        exporter = HTTPSpanExporter(
            endpoint=receiver.http_url("/v1/traces"), compression=compression, timeout=10
        )
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        exporter.shutdown()
        assert_same_spans(spans, received_spans(receiver))
        (t,) = receiver.consumer.traces
        assert t.info.transport == "http" and t.info.peer.startswith("127.0.0.1:")
        receiver.consumer.traces.clear()
    assert receiver.counter("otelcol_receiver_accepted_spans", "http") == 2 * len(spans)


def test_http_json_spans_arrive_identical(receiver: Any) -> None:
    """The SDK has no JSON exporter: its protobuf encoding, as OTLP/JSON, posted as-is."""
    spans = make_spans()
    body = otlpjson.encode_traces(encode_spans(spans))
    r = requests.post(
        receiver.http_url("/v1/traces"),
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {}
    assert_same_spans(spans, received_spans(receiver))


def data_points(data: Any) -> dict[str, list[tuple]]:
    """metric name → [(attributes, start, time, value or (count, sum, bucket_counts))]."""
    out: dict[str, list[tuple]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                pts = []
                proto = hasattr(m, "WhichOneof")
                dps = getattr(m, m.WhichOneof("data")).data_points if proto else m.data.data_points
                for dp in dps:
                    a = attrs(dp.attributes) if proto else sdk_attrs(dp.attributes)
                    if hasattr(dp, "bucket_counts"):
                        v: Any = (dp.count, dp.sum, tuple(dp.bucket_counts))
                    elif proto:
                        v = dp.as_int if dp.WhichOneof("value") == "as_int" else dp.as_double
                    else:
                        v = dp.value
                    pts.append((a, dp.start_time_unix_nano, dp.time_unix_nano, v))
                out[m.name] = sorted(pts, key=repr)
    return out


def test_grpc_and_http_metric_exporters_arrive_identical(receiver: Any) -> None:
    metrics = make_metrics()
    expected = data_points(metrics)
    n_points = sum(len(v) for v in expected.values())
    for transport, exporter in (
        ("grpc", GRPCMetricExporter(endpoint=receiver.grpc_target, insecure=True, timeout=10)),
        ("http", HTTPMetricExporter(endpoint=receiver.http_url("/v1/metrics"), timeout=10)),
    ):
        exporter.export(metrics)
        exporter.shutdown()
        (m,) = receiver.consumer.metrics
        assert m.info.transport == transport
        assert data_points(m.message()) == expected
        assert m.data_point_count == n_points
        assert receiver.counter("otelcol_receiver_accepted_metric_points", transport) == n_points
        receiver.consumer.metrics.clear()


def test_sdk_exporters_retry_after_unavailable_and_deliver_once(receiver: Any) -> None:
    """The pipeline refuses the first attempt (memory limit): the real SDK exporters retry
    as told (RetryInfo / Retry-After) and every span arrives exactly once."""
    spans = make_spans(5)
    for exporter in (
        GRPCSpanExporter(endpoint=receiver.grpc_target, insecure=True, timeout=20),
        HTTPSpanExporter(endpoint=receiver.http_url("/v1/traces"), timeout=20),
    ):
        receiver.consumer.fail = RetryableError("memory limit reached", retry_after_s=0.2)
        receiver.consumer.fail_times = 1
        receiver.consumer.calls = 0
        assert exporter.export(spans) == SpanExportResult.SUCCESS
        exporter.shutdown()
        assert receiver.consumer.calls == 2
        assert_same_spans(spans, received_spans(receiver))
        receiver.consumer.traces.clear()


def test_http_json_large_request_arrives_identical(receiver: Any) -> None:
    """A JSON body large enough to be decoded off the event loop (> 256 KiB)."""
    spans = make_spans(400)
    body = otlpjson.encode_traces(encode_spans(spans))
    assert len(body) > 256 * 1024
    r = requests.post(
        receiver.http_url("/v1/traces"),
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert_same_spans(spans, received_spans(receiver))


def test_http_json_metrics_arrive_identical(receiver: Any) -> None:
    metrics = make_metrics()
    body = otlpjson.encode_metrics(encode_metrics(metrics))
    r = requests.post(
        receiver.http_url("/v1/metrics"),
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 200 and r.json() == {}
    (m,) = receiver.consumer.metrics
    assert data_points(m.message()) == data_points(metrics)
    assert not m.has_raw()  # JSON: the pipeline serializes protobuf only if it needs to
