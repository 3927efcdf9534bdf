"""The exporters inside a running service: an OTLP client sends to pipeline A (otlp receiver
→ otlp_http exporter), pipeline B receives it (otlp receiver → otlp_grpc + file exporters)
and forwards to a real gRPC sink. Every span arrives once with the same ids and attributes.
"""

from __future__ import annotations

import grpc
import pytest
from exporter_sinks import GrpcSink, free_port, trace_request, wait_until
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from otel_goblock.receivers.otlp.otlpjson import decode_traces

from otel_goblock.component import default_registry
from otel_goblock.config.loader import load_text
from otel_goblock.service import Service
from otel_goblock.service_config import build_config


def spans_of(req: ExportTraceServiceRequest) -> dict[bytes, object]:
    return {sp.span_id: sp for rs in req.resource_spans for ss in rs.scope_spans for sp in ss.spans}


async def test_two_pipelines_forward_every_span_unchanged(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("otel_goblock.receivers.otlp.factory")
    sink = await GrpcSink().start()
    a_grpc, b_http = free_port(), free_port()
    registry = default_registry()
    out = tmp_path / "b.jsonl"
    cfg_a = f"""
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{a_grpc}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{b_http}
    retry_on_failure:
      initial_interval: 50ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
"""
    cfg_b = f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{b_http}
exporters:
  otlp:
    endpoint: 127.0.0.1:{sink.port}
    tls:
      insecure: true
  file:
    path: {out}
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp, file]
"""
    svc_a = Service(build_config(load_text(cfg_a), registry))
    svc_b = Service(build_config(load_text(cfg_b), registry))
    await svc_b.start()
    await svc_a.start()
    sent = [trace_request(100, seed=i) for i in range(5)]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{a_grpc}") as ch:
            export = ch.unary_unary(
                "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                request_serializer=ExportTraceServiceRequest.SerializeToString,
                response_deserializer=ExportTraceServiceResponse.FromString,
            )
            for req in sent:
                await export(req, timeout=5)
        await wait_until(lambda: sink.span_count() == 500, timeout=20)
    finally:
        await svc_a.shutdown(5)
        await svc_b.shutdown(5)
        await sink.stop()
    want: dict[bytes, object] = {}
    for req in sent:
        want.update(spans_of(req))
    got: dict[bytes, object] = {}
    for raw in sink.traces:
        got.update(spans_of(ExportTraceServiceRequest.FromString(raw)))
    assert got == want
    assert sink.span_count() == 500  # once each
    from_file: dict[bytes, object] = {}
    for line in out.read_bytes().splitlines():
        from_file.update(spans_of(decode_traces(line)))
    assert from_file == want
    a_sent = svc_a.telemetry.total("otelcol_exporter_sent_spans", exporter="otlphttp")
    assert a_sent == 500
