"""otlp_http against a real aiohttp OTLP/HTTP server: URL composition, bytes unchanged,
gzip on the wire, headers, TLS, status-code retry rules and Retry-After."""

from __future__ import annotations

import asyncio
import gzip
import ssl

import pytest
from exporter_sinks import (
    HttpSink,
    NoHost,
    Telemetry,
    free_port,
    make_certs,
    metrics,
    traces,
    wait_until,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otel_goblock.exporters.otlp.config import HTTPConfig
from otel_goblock.exporters.otlp.factory import FACTORY_HTTP
from otel_goblock.exporters.otlp.http_exporter import gzip_bytes
from otel_goblock.receivers.otlp.otlpjson import decode_metrics, decode_traces

from otel_goblock.config import ConfigError, decode
from otel_goblock.consumer import PermanentError, RetryableError

FAST_RETRY = {"initial_interval": "20ms", "max_interval": "100ms", "randomization_factor": 0.1}


def config(port: int, scheme: str = "http", **over: object) -> HTTPConfig:
    raw: dict[str, object] = {
        "endpoint": f"{scheme}://localhost:{port}",
        "retry_on_failure": FAST_RETRY,
    }
    raw.update(over)
    return decode(HTTPConfig, raw)


async def started(tel: Telemetry, cfg: HTTPConfig):  # type: ignore[no-untyped-def]
    exp = FACTORY_HTTP.create(tel.settings("otlp_http"), cfg, None)
    await exp.start(NoHost())
    return exp


@pytest.fixture
async def sink():  # type: ignore[no-untyped-def]
    s = await HttpSink().start()
    yield s
    await s.stop()


async def test_bytes_gzip_and_headers(sink: HttpSink) -> None:
    tel = Telemetry()
    exp = await started(tel, config(sink.port, headers={"Authorization": "Bearer x"}))
    t, m = traces(300), metrics(9)
    await exp.consume_traces(t)
    await exp.consume_metrics(m)
    await wait_until(lambda: sink.bodies["traces"] and sink.bodies["metrics"])
    await exp.shutdown()
    assert sink.bodies["traces"] == [t.serialized()]
    assert sink.bodies["metrics"] == [m.serialized()]
    h = sink.headers[0]
    assert h["Content-Type"] == "application/x-protobuf"
    assert h["Content-Encoding"] == "gzip"
    assert h["Authorization"] == "Bearer x"
    assert sink.wire_sizes[0] < len(t.serialized()) / 2  # compressed on the wire
    assert tel.value("otelcol_exporter_sent_spans") == 300
    assert tel.value("otelcol_exporter_sent_metric_points") == 9


async def test_no_compression(sink: HttpSink) -> None:
    exp = await started(Telemetry(), config(sink.port, compression="none"))
    t = traces(10)
    await exp.consume_traces(t)
    await wait_until(lambda: sink.bodies["traces"])
    await exp.shutdown()
    assert "Content-Encoding" not in sink.headers[0]
    assert sink.wire_sizes[0] == len(t.serialized())


async def test_signal_endpoint_override(sink: HttpSink) -> None:
    cfg = decode(
        HTTPConfig,
        {
            "endpoint": f"http://localhost:{sink.port}/",
            "traces_endpoint": f"http://localhost:{sink.port}/custom/traces",
        },
    )
    assert cfg.signal_url("metrics") == f"http://localhost:{sink.port}/v1/metrics"
    exp = await started(Telemetry(), cfg)
    await exp.consume_traces(traces(1))
    await wait_until(lambda: sink.bodies["traces"])
    await exp.shutdown()


async def test_https_with_ca_and_skip_verify(tmp_path) -> None:  # type: ignore[no-untyped-def]
    certs = make_certs(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certs["ca_cert"]))
    ctx.load_cert_chain(certs["server_cert"], certs["server_key"])
    ctx.verify_mode = ssl.CERT_REQUIRED  # mTLS
    sink = await HttpSink(ssl_context=ctx).start()
    client = {"cert_file": str(certs["client_cert"]), "key_file": str(certs["client_key"])}
    try:
        cfg = config(sink.port, "https", tls={"ca_file": str(certs["ca_cert"]), **client})
        exp = await started(Telemetry(), cfg)
        await exp.consume_traces(traces(2))
        await wait_until(lambda: len(sink.bodies["traces"]) == 1)
        await exp.shutdown()

        cfg = config(sink.port, "https", tls={"insecure_skip_verify": True, **client})
        exp = await started(Telemetry(), cfg)
        await exp.consume_traces(traces(2))
        await wait_until(lambda: len(sink.bodies["traces"]) == 2)
        await exp.shutdown()

        # the system roots do not know the test CA: refused, nothing arrives
        cfg = config(
            sink.port,
            "https",
            tls=client,
            sending_queue={"enabled": False},
            retry_on_failure={"enabled": False},
        )
        exp = await started(Telemetry(), cfg)
        with pytest.raises(RetryableError, match=r"certificate|SSL"):
            await exp.consume_traces(traces(2))
        await exp.shutdown()
        assert len(sink.bodies["traces"]) == 2
    finally:
        await sink.stop()


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_retryable_statuses(sink: HttpSink, status: int) -> None:
    sink.faults.append((status, 2, {}))
    exp = await started(Telemetry(), config(sink.port))
    await exp.consume_traces(traces(3))
    await wait_until(lambda: sink.bodies["traces"])
    await exp.shutdown()
    assert len(sink.calls) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 500])
async def test_non_retryable_statuses(sink: HttpSink, status: int) -> None:
    sink.faults.append((status, 5, {}))
    tel = Telemetry()
    exp = await started(tel, config(sink.port))
    await exp.consume_traces(traces(3))
    await wait_until(lambda: tel.value("otelcol_exporter_send_failed_spans") == 3)
    await asyncio.sleep(0.2)
    await exp.shutdown()
    assert len(sink.calls) == 1


async def test_retry_after_is_honoured(sink: HttpSink) -> None:
    sink.faults.append((503, 1, {"Retry-After": "1"}))
    exp = await started(Telemetry(), config(sink.port))
    await exp.consume_traces(traces(3))
    await wait_until(lambda: sink.bodies["traces"])
    await exp.shutdown()
    assert sink.calls[1] - sink.calls[0] >= 1.0


async def test_partial_success(sink: HttpSink) -> None:
    sink.rejected_per_call = 2
    tel = Telemetry()
    exp = await started(tel, config(sink.port))
    await exp.consume_traces(traces(5))
    await wait_until(lambda: tel.value("otelcol_exporter_send_failed_spans") == 2)
    await exp.shutdown()
    assert tel.value("otelcol_exporter_sent_spans") == 3


async def test_queue_disabled_permanent_error(sink: HttpSink) -> None:
    sink.faults.append((400, 1, {}))
    exp = await started(Telemetry(), config(sink.port, sending_queue={"enabled": False}))
    with pytest.raises(PermanentError, match="HTTP 400: injected"):
        await exp.consume_traces(traces(1))
    await exp.shutdown()


def test_gzip_bytes_is_gzip() -> None:
    assert gzip.decompress(gzip_bytes(b"abc" * 1000)) == b"abc" * 1000


def test_config_errors() -> None:
    with pytest.raises(ConfigError) as e:
        decode(HTTPConfig, {"endpoint": "localhost:4318"}, "x")
    assert 'x.endpoint: expected a URL like "https://otelcol:4318"' in str(e.value)
    with pytest.raises(ConfigError, match=r"x\.endpoint: expected a URL"):
        decode(HTTPConfig, {}, "x")
    with pytest.raises(ConfigError, match=r"x\.tls\.cert_file, key_file: expected both"):
        decode(HTTPConfig, {"endpoint": "http://a:1", "tls": {"cert_file": "/etc/hostname"}}, "x")


async def test_outage_then_overflow_accounting() -> None:
    port = free_port()
    tel = Telemetry()
    cfg = config(port, sending_queue={"queue_size": 10, "num_consumers": 2})
    exp = await started(tel, cfg)  # nobody listens yet: connection refused, retried
    total = refused = 0
    for i in range(40):
        n = 1 + i % 5
        total += n
        try:
            await exp.consume_traces(traces(n, seed=i))
        except RetryableError:
            refused += n
    assert refused > 0
    sink = await HttpSink(port=port).start()
    try:
        await wait_until(lambda: tel.value("otelcol_exporter_sent_spans") == total - refused, 20)
        await exp.shutdown()
    finally:
        await sink.stop()
    got = sum(
        len(ss.spans)
        for body in sink.bodies["traces"]
        for rs in ExportTraceServiceRequest.FromString(body).resource_spans
        for ss in rs.scope_spans
    )
    assert got == total - refused
    assert tel.value("otelcol_exporter_enqueue_failed_spans") == refused


async def test_json_encoding(sink: HttpSink) -> None:
    exp = await started(Telemetry(), config(sink.port, encoding="json"))
    t, m = traces(4), metrics(3)
    await exp.consume_traces(t)
    await exp.consume_metrics(m)
    await wait_until(lambda: sink.bodies["traces"] and sink.bodies["metrics"])
    await exp.shutdown()
    assert sink.headers[0]["Content-Type"] == "application/json"
    assert decode_traces(sink.bodies["traces"][0]) == t.message()
    assert decode_metrics(sink.bodies["metrics"][0]) == m.message()
    span = t.message().resource_spans[0].scope_spans[0].spans[0]
    assert span.span_id.hex().encode() in sink.bodies["traces"][0]  # hex ids on the wire
