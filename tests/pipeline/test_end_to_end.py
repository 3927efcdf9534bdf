"""Two real pipelines in a row: the OTel Python SDK exports to pipeline A (otlp → batch →
otlp_grpc), A exports to pipeline B (otlp → file). What B writes must be exactly what the
SDK sent: every span once, same ids, timestamps and attributes."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from otel_goblock.receivers.otlp.otlpjson import decode_metrics, decode_traces
from pipelines import Pipeline, free_port


def sink_config(grpc_port: int, out: Path) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{grpc_port}"}}}},
        "exporters": {"file": {"path": str(out)}},
        "service": {
            "pipelines": {
                "traces": {"receivers": ["otlp"], "exporters": ["file"]},
                "metrics": {"receivers": ["otlp"], "exporters": ["file"]},
            }
        },
    }


def relay_config(
    grpc_port: int, http_port: int, downstream: int, **exporter: Any
) -> dict[str, Any]:
    exp = {
        "endpoint": f"127.0.0.1:{downstream}",
        "tls": {"insecure": True},
        "retry_on_failure": {"initial_interval": "100ms", "max_interval": "500ms"},
    }
    exp.update(exporter)
    return {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"127.0.0.1:{grpc_port}"},
                    "http": {"endpoint": f"127.0.0.1:{http_port}"},
                }
            }
        },
        "processors": {"batch": {"timeout": "100ms", "send_batch_size": 100}},
        "exporters": {"otlp_grpc": exp},
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["otlp_grpc"],
                },
                "metrics": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["otlp_grpc"],
                },
            }
        },
    }


def written_spans(path: Path) -> dict[tuple[str, str], Any]:
    spans: dict[tuple[str, str], Any] = {}
    dups = 0
    for line in path.read_text().splitlines() if path.exists() else []:
        if '"resourceSpans"' not in line:
            continue
        for rs in decode_traces(line).resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    key = (s.trace_id.hex(), s.span_id.hex())
                    dups += key in spans
                    spans[key] = s
    assert dups == 0, f"{dups} spans arrived more than once"
    return spans


def wait_for(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.1)


@pytest.fixture
def chain(tmp_path: Path):  # type: ignore[no-untyped-def]
    b_port, a_grpc, a_http = free_port(), free_port(), free_port()
    out = tmp_path / "b.jsonl"
    b = Pipeline(sink_config(b_port, out), tmp_path, "b").start()
    a = Pipeline(relay_config(a_grpc, a_http, b_port), tmp_path, "a").start()
    yield a, b, a_grpc, a_http, out, b_port
    a.stop()
    b.stop()


def test_sdk_spans_cross_two_pipelines_exactly_once(chain) -> None:  # type: ignore[no-untyped-def]
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExp
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExp
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    a, _b, a_grpc, a_http, out, _ = chain
    finished = []
    for exporter in (
        GrpcExp(endpoint=f"127.0.0.1:{a_grpc}", insecure=True),
        HttpExp(endpoint=f"http://127.0.0.1:{a_http}/v1/traces"),
    ):
        tp = TracerProvider(resource=Resource.create({"service.name": "e2e"}))
        sent = InMemorySpanExporter()  # shut down with its provider: one per provider
        tp.add_span_processor(SimpleSpanProcessor(sent))
        tp.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=50))
        tr = tp.get_tracer("e2e")
        for i in range(300):
            with tr.start_as_current_span(f"op{i % 7}", attributes={"i": i, "k": "v" * (i % 5)}):
                pass
        assert tp.force_flush(10_000)
        finished.extend(sent.get_finished_spans())
        tp.shutdown()
    want = {(f"{s.context.trace_id:032x}", f"{s.context.span_id:016x}"): s for s in finished}
    assert len(want) == 600
    wait_for(lambda: len(written_spans(out)) >= 600)
    got = written_spans(out)
    assert set(got) == set(want)
    for key, s in want.items():
        g = got[key]
        assert g.name == s.name
        assert g.start_time_unix_nano == s.start_time
        assert g.end_time_unix_nano == s.end_time
        attrs = {kv.key: kv.value for kv in g.attributes}
        assert attrs["i"].int_value == s.attributes["i"]
        assert attrs["k"].string_value == s.attributes["k"]
    m = a.metrics()
    assert m["otelcol_receiver_accepted_spans_total"] == 600
    assert m["otelcol_exporter_sent_spans_total"] == 600


def test_sdk_metrics_cross_two_pipelines(chain) -> None:  # type: ignore[no-untyped-def]
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    _a, _b, a_grpc, _, out, _ = chain
    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"127.0.0.1:{a_grpc}", insecure=True),
        export_interval_millis=60_000,
    )
    mp = MeterProvider(metric_readers=[reader])
    counter = mp.get_meter("e2e").create_counter("e2e.requests")
    for i in range(10):
        counter.add(i + 1, {"route": f"/r{i % 2}"})
    assert mp.force_flush(10_000)
    mp.shutdown()

    def totals() -> dict[str, int]:
        out_totals: dict[str, int] = {}
        for line in out.read_text().splitlines() if out.exists() else []:
            if '"resourceMetrics"' not in line:
                continue
            for rm in decode_metrics(line).resource_metrics:
                for sm in rm.scope_metrics:
                    for metric in sm.metrics:
                        if metric.name == "e2e.requests":
                            for p in metric.sum.data_points:
                                route = p.attributes[0].value.string_value
                                out_totals[route] = p.as_int
        return out_totals

    wait_for(lambda: len(totals()) == 2)
    assert totals() == {"/r0": 1 + 3 + 5 + 7 + 9, "/r1": 2 + 4 + 6 + 8 + 10}


def raw_request(n: int, seed: int) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="x")))
    ss = rs.scope_spans.add()
    for i in range(n):
        s = ss.spans.add()
        s.trace_id = (seed * 100_000 + i + 1).to_bytes(16, "big")
        s.span_id = (seed * 100_000 + i + 1).to_bytes(8, "big")
        s.name = "op"
        s.start_time_unix_nano, s.end_time_unix_nano = 1, 2
    return req


def send(port: int, reqs: list[ExportTraceServiceRequest]) -> int:
    """Sends each request once (no retry); returns how many spans were acknowledged."""
    acked = 0
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        stub = trace_service_pb2_grpc.TraceServiceStub(ch)
        for r in reqs:
            try:
                stub.Export(r, timeout=5)
                acked += sum(len(ss.spans) for rs in r.resource_spans for ss in rs.scope_spans)
            except grpc.RpcError:
                pass
    return acked


def test_downstream_outage_loses_nothing_while_the_queue_has_room(tmp_path: Path) -> None:
    b_port, a_grpc, a_http = free_port(), free_port(), free_port()
    out = tmp_path / "b.jsonl"
    b = Pipeline(sink_config(b_port, out), tmp_path, "b").start()
    a = Pipeline(relay_config(a_grpc, a_http, b_port), tmp_path, "a").start()
    try:
        acked = send(a_grpc, [raw_request(10, k) for k in range(5)])
        wait_for(lambda: len(written_spans(out)) == 50)
        b.stop()
        acked += send(a_grpc, [raw_request(10, k) for k in range(5, 40)])
        time.sleep(10)  # downstream down for 10 s
        b = Pipeline(sink_config(b_port, out), tmp_path, "b2").start()
        wait_for(lambda: len(written_spans(out)) == acked, timeout=30)
        assert acked == 400
        assert a.metrics().get("otelcol_exporter_enqueue_failed_spans_total", 0) == 0
    finally:
        a.stop()
        b.stop()


def test_queue_overflow_loss_equals_enqueue_failed_spans(tmp_path: Path) -> None:
    b_port, a_grpc, a_http = free_port(), free_port(), free_port()
    out = tmp_path / "b.jsonl"
    a = Pipeline(
        relay_config(a_grpc, a_http, b_port, sending_queue={"queue_size": 5, "num_consumers": 1}),
        tmp_path,
        "a",
    ).start()
    b = None
    try:
        # the downstream does not exist yet: the queue fills, then refuses
        acked = 0
        for k in range(40):
            acked += send(a_grpc, [raw_request(10, k)])
            time.sleep(0.12)  # one batch (timeout 100ms) per request
        failed = a.metrics().get("otelcol_exporter_enqueue_failed_spans_total", 0)
        assert failed > 0
        b = Pipeline(sink_config(b_port, out), tmp_path, "b").start()
        wait_for(lambda: len(written_spans(out)) + failed == acked, timeout=30)
        time.sleep(0.5)
        assert len(written_spans(out)) + failed == acked
    finally:
        a.stop()
        if b:
            b.stop()


def test_sigterm_exports_everything_accepted(chain) -> None:  # type: ignore[no-untyped-def]
    a, _b, a_grpc, _, out, _ = chain
    acked = send(a_grpc, [raw_request(50, k) for k in range(40)])
    assert a.stop(signal.SIGTERM) == 0
    assert acked == 2000
    wait_for(lambda: len(written_spans(out)) == acked, timeout=10)
