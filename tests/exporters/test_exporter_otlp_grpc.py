"""otlp_grpc against a real grpc.aio OTLP server: bytes forwarded unchanged, gzip, headers,
TLS, retry rules, outage and overflow accounting, shutdown drain."""

from __future__ import annotations

import asyncio
import logging

import grpc
import pytest
from exporter_sinks import (
    Fault,
    GrpcSink,
    NoHost,
    Telemetry,
    free_port,
    make_certs,
    metrics,
    traces,
    wait_until,
)
from otel_goblock.exporters.otlp.config import Config
from otel_goblock.exporters.otlp.factory import FACTORY

from otel_goblock.config import ConfigError, decode
from otel_goblock.consumer import PermanentError, RetryableError
from otel_goblock.pdata import Event, Traces

FAST_RETRY = {
    "initial_interval": "20ms",
    "max_interval": "100ms",
    "max_elapsed_time": "30s",
    "randomization_factor": 0.1,
}


def config(port: int, **over: object) -> Config:
    raw: dict[str, object] = {
        "endpoint": f"127.0.0.1:{port}",
        "tls": {"insecure": True},
        "retry_on_failure": FAST_RETRY,
    }
    raw.update(over)
    return decode(Config, raw)


async def started(tel: Telemetry, cfg: Config, id_: str = "otlp_grpc"):  # type: ignore[no-untyped-def]
    exp = FACTORY.create(tel.settings(id_), cfg, None)
    await exp.start(NoHost())
    return exp


@pytest.fixture
async def sink():  # type: ignore[no-untyped-def]
    s = await GrpcSink().start()
    yield s
    await s.stop()


async def test_bytes_forwarded_unchanged_with_headers(sink: GrpcSink) -> None:
    tel = Telemetry()
    exp = await started(tel, config(sink.port, headers={"X-Tenant": "acme", "auth": "t0k"}))
    sent = [traces(50, seed=i) for i in range(3)]
    for t in sent:
        await exp.consume_traces(t)
    await exp.consume_metrics(metrics(7))
    await wait_until(lambda: len(sink.traces) == 3 and len(sink.metrics) == 1)
    await exp.shutdown()
    assert sorted(sink.traces) == sorted(t.serialized() for t in sent)
    assert sink.metadata[0]["x-tenant"] == "acme" and sink.metadata[0]["auth"] == "t0k"
    assert tel.value("otelcol_exporter_sent_spans", exporter="otlp_grpc") == 150
    assert tel.value("otelcol_exporter_sent_metric_points", exporter="otlp_grpc") == 7
    assert tel.value("otelcol_exporter_send_failed_spans") == 0


class ByteCounter:
    """A loopback TCP relay counting the client's bytes: what really went on the wire."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.up = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _conn(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.target)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, up: bool) -> None:
            while data := await src.read(65536):
                if up:
                    self.up += len(data)
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pump(r, uw, True), pump(ur, w, False), return_exceptions=True)

    async def stop(self) -> None:
        self.server.close()


@pytest.mark.parametrize("compression", ["gzip", "none"])
async def test_compression_on_the_wire(sink: GrpcSink, compression: str) -> None:
    relay = ByteCounter(sink.port)
    port = await relay.start()
    exp = await started(Telemetry(), config(port, compression=compression))
    data = traces(2000)
    await exp.consume_traces(data)
    await wait_until(lambda: len(sink.traces) == 1)
    await exp.shutdown()
    await relay.stop()
    assert sink.traces[0] == data.serialized()
    size = len(data.serialized())
    if compression == "gzip":
        assert relay.up < size / 2, (relay.up, size)
    else:
        assert relay.up > size, (relay.up, size)


async def test_edited_message_is_serialized_once_and_sent(sink: GrpcSink) -> None:
    # a processor that edits spans (goblock) hands on a parsed message, not bytes
    exp = await started(Telemetry(), config(sink.port))
    t = traces(5)
    msg = t.mutable_message()
    msg.resource_spans[0].scope_spans[0].spans[0].name = "renamed"
    await exp.consume_traces(t)
    await wait_until(lambda: len(sink.traces) == 1)
    await exp.shutdown()
    assert sink.traces[0] == msg.SerializeToString()


async def test_empty_traces_are_not_sent(sink: GrpcSink) -> None:
    exp = await started(Telemetry(), config(sink.port))
    ev = Event(kind="syscall", pid=1, tid=1, goid=0, start_ns=1, end_ns=2)
    await exp.consume_traces(Traces(raw=b"", span_count=0, events=[ev]))
    await exp.consume_traces(traces(1))
    await wait_until(lambda: len(sink.traces) == 1)
    await exp.shutdown()
    assert len(sink.calls) == 1


async def test_mtls(tmp_path) -> None:  # type: ignore[no-untyped-def]
    certs = make_certs(tmp_path)
    tls = (
        certs["server_key"].read_bytes(),
        certs["server_cert"].read_bytes(),
        certs["ca_cert"].read_bytes(),  # require client certificates signed by the CA
    )
    sink = await GrpcSink(tls=tls).start()
    try:
        cfg = decode(
            Config,
            {
                "endpoint": f"localhost:{sink.port}",
                "tls": {
                    "ca_file": str(certs["ca_cert"]),
                    "cert_file": str(certs["client_cert"]),
                    "key_file": str(certs["client_key"]),
                },
            },
        )
        exp = await started(Telemetry(), cfg)
        data = traces(5)
        await exp.consume_traces(data)
        await wait_until(lambda: len(sink.traces) == 1)
        await exp.shutdown()
        assert sink.traces == [data.serialized()]

        # without a client certificate the server refuses the handshake: nothing arrives
        cfg = decode(
            Config,
            {
                "endpoint": f"localhost:{sink.port}",
                "tls": {"ca_file": str(certs["ca_cert"])},
                "sending_queue": {"enabled": False},
                "retry_on_failure": {"enabled": False},
                "timeout": "2s",
            },
        )
        exp = await started(Telemetry(), cfg)
        with pytest.raises(RetryableError):
            await exp.consume_traces(traces(1))
        await exp.shutdown()
        assert len(sink.traces) == 1
    finally:
        await sink.stop()


async def test_tls_server_not_trusted_without_ca(tmp_path) -> None:  # type: ignore[no-untyped-def]
    certs = make_certs(tmp_path)
    tls = (certs["server_key"].read_bytes(), certs["server_cert"].read_bytes(), None)
    sink = await GrpcSink(tls=tls).start()
    try:
        cfg = decode(
            Config,
            {
                "endpoint": f"localhost:{sink.port}",
                "sending_queue": {"enabled": False},
                "retry_on_failure": {"enabled": False},
                "timeout": "2s",
            },
        )
        exp = await started(Telemetry(), cfg)
        with pytest.raises(RetryableError):
            await exp.consume_traces(traces(1))
        await exp.shutdown()
        assert sink.traces == []
    finally:
        await sink.stop()


async def test_insecure_skip_verify_pins_the_presented_certificate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    certs = make_certs(tmp_path)
    tls = (certs["server_key"].read_bytes(), certs["server_cert"].read_bytes(), None)
    port = free_port()
    cfg = decode(
        Config,
        {
            "endpoint": f"127.0.0.1:{port}",
            "tls": {"insecure_skip_verify": True},  # no ca_file: the CA is unknown
            "retry_on_failure": FAST_RETRY,
        },
    )
    exp = await started(Telemetry(), cfg)
    await exp.consume_traces(traces(3))  # the server is not up yet: retried
    await asyncio.sleep(0.2)
    sink = await GrpcSink(port=port, tls=tls).start()
    try:
        await wait_until(lambda: len(sink.traces) == 1, timeout=30)
        # a restarted server with a new certificate is pinned again
        await sink.stop()
        certs2 = make_certs(
            tmp_path / "again" if (tmp_path / "again").mkdir() is None else tmp_path
        )
        tls2 = (certs2["server_key"].read_bytes(), certs2["server_cert"].read_bytes(), None)
        sink = await GrpcSink(port=port, tls=tls2).start()
        await exp.consume_traces(traces(2))
        await wait_until(lambda: len(sink.traces) == 1, timeout=30)
        await exp.shutdown()
    finally:
        await sink.stop()


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.DATA_LOSS,
    ],
)
async def test_retryable_codes_are_retried(sink: GrpcSink, code: grpc.StatusCode) -> None:
    sink.faults.append(Fault(code, times=2))
    tel = Telemetry()
    exp = await started(tel, config(sink.port))
    await exp.consume_traces(traces(4))
    await wait_until(lambda: len(sink.traces) == 1)
    await exp.shutdown()
    assert len(sink.calls) == 3
    assert tel.value("otelcol_exporter_sent_spans") == 4


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,  # without RetryInfo: not retried
    ],
)
async def test_non_retryable_codes_are_not_retried(sink: GrpcSink, code: grpc.StatusCode) -> None:
    sink.faults.append(Fault(code, times=5))
    tel = Telemetry()
    exp = await started(tel, config(sink.port))
    await exp.consume_traces(traces(4))
    await wait_until(lambda: tel.value("otelcol_exporter_send_failed_spans") == 4)
    await asyncio.sleep(0.2)  # a retry would come within 20-100 ms
    await exp.shutdown()
    assert len(sink.calls) == 1
    assert sink.traces == []


async def test_retry_info_is_honoured(sink: GrpcSink) -> None:
    # RESOURCE_EXHAUSTED with RetryInfo is retryable, after the server's delay (0.6 s),
    # which is longer than the configured backoff (20 ms)
    sink.faults.append(Fault(grpc.StatusCode.RESOURCE_EXHAUSTED, retry_delay_s=0.6))
    exp = await started(Telemetry(), config(sink.port))
    await exp.consume_traces(traces(3))
    await wait_until(lambda: len(sink.traces) == 1)
    await exp.shutdown()
    assert len(sink.calls) == 2
    assert sink.calls[1] - sink.calls[0] >= 0.6


async def test_partial_success_counts_rejected_as_failed(sink: GrpcSink, caplog) -> None:  # type: ignore[no-untyped-def]
    sink.rejected_per_call = 3
    tel = Telemetry()
    exp = await started(tel, config(sink.port))
    with caplog.at_level(logging.WARNING):
        await exp.consume_traces(traces(10))
        await wait_until(lambda: tel.value("otelcol_exporter_send_failed_spans") == 3)
    await exp.shutdown()
    assert tel.value("otelcol_exporter_sent_spans") == 7
    assert "3 spans rejected: some spans were bad" in caplog.text


async def test_queue_disabled_reports_to_caller(sink: GrpcSink) -> None:
    cfg = config(sink.port, sending_queue={"enabled": False})
    exp = await started(Telemetry(), cfg)
    await exp.consume_traces(traces(2))  # returns once the sink has it
    assert len(sink.traces) == 1
    sink.faults.append(Fault(grpc.StatusCode.INVALID_ARGUMENT))
    with pytest.raises(PermanentError):
        await exp.consume_traces(traces(2))
    await exp.shutdown()


async def test_outage_no_loss_while_the_queue_has_room() -> None:
    port = free_port()
    sink = await GrpcSink(port=port).start()
    tel = Telemetry()
    cfg = config(port, sending_queue={"queue_size": 100, "num_consumers": 4})
    exp = await started(tel, cfg)
    sent = [traces(10, seed=i) for i in range(60)]
    await sink.stop()
    for t in sent:
        await exp.consume_traces(t)  # the downstream is down: all of it waits in the queue
    await asyncio.sleep(1.0)
    assert sink.traces == []
    sink = await GrpcSink(port=port).start()
    try:
        await wait_until(lambda: len(sink.traces) == 60, timeout=20)
        await exp.shutdown()
    finally:
        await sink.stop()
    assert sorted(sink.traces) == sorted(t.serialized() for t in sent)
    assert tel.value("otelcol_exporter_sent_spans") == 600
    assert tel.value("otelcol_exporter_enqueue_failed_spans") == 0


async def test_overflow_loss_equals_enqueue_failed_exactly() -> None:
    port = free_port()
    sink = await GrpcSink(port=port).start()
    tel = Telemetry()
    cfg = config(port, sending_queue={"queue_size": 20, "num_consumers": 2})
    exp = await started(tel, cfg)
    await sink.stop()
    refused = 0
    total = 0
    for i in range(100):
        n = 1 + i % 7  # uneven request sizes: the counter must count spans, not requests
        total += n
        try:
            await exp.consume_traces(traces(n, seed=i))
        except RetryableError:
            refused += n
    assert refused > 0
    sink = await GrpcSink(port=port).start()
    try:
        await wait_until(lambda: tel.value("otelcol_exporter_sent_spans") == total - refused, 20)
        await exp.shutdown()
    finally:
        await sink.stop()
    received = sink.span_count()
    assert received == total - refused
    assert tel.value("otelcol_exporter_enqueue_failed_spans", exporter="otlp_grpc") == refused
    assert total - received == tel.value("otelcol_exporter_enqueue_failed_spans")


async def test_queue_telemetry(sink: GrpcSink) -> None:
    tel = Telemetry()
    cfg = config(sink.port, sending_queue={"queue_size": 50, "num_consumers": 1})
    sink.delay_s = 0.3
    exp = await started(tel, cfg)
    for i in range(5):
        await exp.consume_traces(traces(1, seed=i))
    await asyncio.sleep(0.1)
    assert tel.value("otelcol_exporter_queue_capacity", data_type="traces") == 50
    assert tel.value("otelcol_exporter_queue_size", exporter="otlp_grpc") == 4
    await exp.shutdown()


async def test_shutdown_drains_the_queue(sink: GrpcSink) -> None:
    sink.delay_s = 0.05
    tel = Telemetry()
    exp = await started(tel, config(sink.port, sending_queue={"num_consumers": 2}))
    for i in range(20):
        await exp.consume_traces(traces(5, seed=i))
    await asyncio.wait_for(exp.shutdown(), 10)
    assert len(sink.traces) == 20
    assert tel.value("otelcol_exporter_sent_spans") == 100
    with pytest.raises(RetryableError):  # stopped: no longer accepting
        await exp.consume_traces(traces(1))


async def test_shutdown_deadline_counts_and_logs_the_loss(caplog) -> None:  # type: ignore[no-untyped-def]
    port = free_port()  # nobody listens: every attempt fails and is retried
    tel = Telemetry()
    exp = await started(tel, config(port, sending_queue={"num_consumers": 2}))
    for i in range(10):
        await exp.consume_traces(traces(3, seed=i))
    with caplog.at_level(logging.ERROR), pytest.raises(TimeoutError):
        await asyncio.wait_for(exp.shutdown(), 0.5)
    assert tel.value("otelcol_exporter_send_failed_spans") == 30
    assert "30 spans dropped (10 requests)" in caplog.text


def test_config_defaults_and_errors() -> None:
    cfg = FACTORY.create_default_config()
    assert cfg.compression == "gzip" and cfg.timeout == 5.0
    assert cfg.sending_queue.queue_size == 1000 and cfg.sending_queue.num_consumers == 10
    r = cfg.retry_on_failure
    assert (r.initial_interval, r.max_interval, r.max_elapsed_time) == (5.0, 30.0, 300.0)
    assert (r.multiplier, r.randomization_factor) == (1.5, 0.5)
    with pytest.raises(ConfigError) as e:
        decode(
            Config,
            {
                "endpoint": "",
                "compression": "zip",
                "retry_on_failure": {"max_interval": "fast"},
                "sending_queue": {"queue_size": 0},
                "bogus": 1,
            },
            "exporters.otlp_grpc/x",
        )
    text = str(e.value)
    assert "exporters.otlp_grpc/x.compression: expected one of 'gzip', 'none'" in text
    assert "exporters.otlp_grpc/x.retry_on_failure.max_interval: expected a duration" in text
    assert "exporters.otlp_grpc/x.bogus: unknown key" in text
    with pytest.raises(ConfigError) as e:
        decode(Config, {"endpoint": "x:1", "sending_queue": {"queue_size": 0}}, "e")
    assert "e.sending_queue.queue_size: expected >= 1, got 0" in str(e.value)
    with pytest.raises(ConfigError, match=r"e\.endpoint: expected host:port"):
        decode(Config, {}, "e")
