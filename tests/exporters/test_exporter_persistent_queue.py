"""sending_queue.storage: a request the exporter accepted survives kill -9 and a shutdown
deadline, and is sent after the restart (issue 9, item 2)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from exporter_sinks import GrpcSink, NoHost, Telemetry, free_port, traces, wait_until
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otel_goblock.exporters.otlp.config import Config
from otel_goblock.exporters.otlp.factory import FACTORY

from otel_goblock.config import decode

HERE = Path(__file__).resolve().parent
FAST = {"initial_interval": "20ms", "max_interval": "100ms", "max_elapsed_time": "0"}

CHILD = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {here!r})
    from exporter_sinks import NoHost, Telemetry, traces
    from otel_goblock.config import decode
    from otel_goblock.exporters.otlp.config import Config
    from otel_goblock.exporters.otlp.factory import FACTORY

    async def main():
        cfg = decode(Config, {cfg!r})
        exp = FACTORY.create(Telemetry().settings("otlp_grpc"), cfg, None)
        await exp.start(NoHost())
        for i in range(100000):
            await exp.consume_traces(traces(10, seed=i))
            print(i, flush=True)  # acknowledged: consume_traces returned
            await asyncio.sleep(0.002)

    asyncio.run(main())
    """
)


def config(port: int, storage: Path) -> dict[str, object]:
    return {
        "endpoint": f"127.0.0.1:{port}",
        "tls": {"insecure": True},
        "sending_queue": {"storage": str(storage), "queue_size": 100000},
        "retry_on_failure": FAST,
    }


def span_seeds(sink: GrpcSink) -> set[int]:
    """The seed of each request the sink got (span ids are seed * 1e6 + i + 1)."""
    seeds = set()
    for raw in sink.traces:
        req = ExportTraceServiceRequest.FromString(raw)
        for sp in req.resource_spans[0].scope_spans[0].spans:
            seeds.add((int.from_bytes(sp.span_id, "big") - 1) // 1_000_000)
    return seeds


async def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    port = free_port()  # the downstream is down while the first process runs
    storage = tmp_path / "queue"
    code = CHILD.format(here=str(HERE), cfg=config(port, storage))
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=os.environ
    )
    assert child.stdout is not None
    acked: set[int] = set()
    for line in child.stdout:
        acked.add(int(line))
        if len(acked) >= 150:
            break
    child.send_signal(signal.SIGKILL)  # mid-stream: no shutdown, no flush
    acked.update(int(line) for line in child.stdout)  # acks printed before it died
    child.wait(10)

    sink = await GrpcSink(port=port).start()
    tel = Telemetry()
    exp = FACTORY.create(tel.settings("otlp_grpc"), decode(Config, config(port, storage)), None)
    try:
        await exp.start(NoHost())
        await wait_until(lambda: acked <= span_seeds(sink), timeout=30)
        await exp.shutdown()
    finally:
        await sink.stop()
    assert acked <= span_seeds(sink)
    assert not list((storage / "otlp_grpc" / "traces").glob("*.pb"))  # all sent: removed


async def test_shutdown_deadline_keeps_stored_requests(tmp_path: Path) -> None:
    port = free_port()
    storage = tmp_path / "q"
    tel = Telemetry()
    exp = FACTORY.create(tel.settings("otlp_grpc"), decode(Config, config(port, storage)), None)
    await exp.start(NoHost())
    sent = [traces(4, seed=i) for i in range(30)]
    for t in sent:
        await exp.consume_traces(t)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(exp.shutdown(), 0.3)
    # kept, not lost: nothing counted as failed
    assert tel.value("otelcol_exporter_send_failed_spans") == 0
    assert len(list((storage / "otlp_grpc" / "traces").glob("*.pb"))) == 30

    sink = await GrpcSink(port=port).start()
    tel2 = Telemetry()
    exp = FACTORY.create(tel2.settings("otlp_grpc"), decode(Config, config(port, storage)), None)
    try:
        await exp.start(NoHost())
        await wait_until(lambda: len(sink.traces) == 30)
        await exp.shutdown()
    finally:
        await sink.stop()
    assert sorted(sink.traces) == sorted(t.serialized() for t in sent)  # bytes as received
    assert tel2.value("otelcol_exporter_sent_spans") == 120


async def test_capacity_counts_stored_requests(tmp_path: Path) -> None:
    port = free_port()
    cfg = config(port, tmp_path)
    cfg["sending_queue"] = {"storage": str(tmp_path), "queue_size": 5, "num_consumers": 1}
    tel = Telemetry()
    exp = FACTORY.create(tel.settings("otlp_grpc/p"), decode(Config, cfg), None)
    await exp.start(NoHost())
    refused = 0
    for i in range(20):
        try:
            await exp.consume_traces(traces(2, seed=i))
        except Exception:
            refused += 2
        await asyncio.sleep(0)
    assert refused > 0
    assert tel.value("otelcol_exporter_enqueue_failed_spans") == refused
    stored = list((tmp_path / "otlp_grpc_p" / "traces").glob("*.pb"))
    assert len(stored) * 2 == 40 - refused  # queued + in flight: all on disk
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(exp.shutdown(), 0.2)


async def test_one_process_per_storage_directory(tmp_path: Path) -> None:
    cfg = decode(Config, config(free_port(), tmp_path))
    first = FACTORY.create(Telemetry().settings("otlp_grpc"), cfg, None)
    with pytest.raises(RuntimeError, match="in use by another exporter or process"):
        FACTORY.create(Telemetry().settings("otlp_grpc"), cfg, None)
    await first.start(NoHost())
    await first.shutdown()
    FACTORY.create(Telemetry().settings("otlp_grpc"), cfg, None)  # released at shutdown
