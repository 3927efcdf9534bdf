"""How fast otlp_grpc forwards spans on loopback, and what the exporterhelper costs.

Runs a counting OTLP/gRPC sink in a separate process (raw handler: it neither parses nor
decompresses beyond what grpc itself does), then, in this process, pushes requests of 512
spans x 10 attributes through:

  raw      a bare grpc.aio unary call per request, 10 concurrent (the floor: no queue, no
           retry, no telemetry)
  otlp_grpc the exporter with its defaults (sending_queue 1000 / 10 consumers, retry,
           timeout), compression none and gzip, and with the persistent queue
           (`sending_queue.storage` in a temporary directory: a file per request)

and prints spans/s, exporter-process CPU-seconds per 100k spans, and each ratio to raw.
The feeder keeps the queue about half full (it waits while 500 requests are queued), so
the numbers are the exporter's own cost, not that of a feeder spinning on refusals.

    .venv/bin/python benchmarks/otlp_exporter.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import socket
import sys
import tempfile
import time

import grpc
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from otel_goblock.exporters.otlp.config import Config, HTTPConfig
from otel_goblock.exporters.otlp.factory import FACTORY, FACTORY_HTTP

from otel_goblock.component import ComponentID, CreateSettings, Host
from otel_goblock.config import decode
from otel_goblock.consumer import RetryableError
from otel_goblock.pdata import Traces

SPANS = 512
METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def build_request() -> bytes:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value="bench"))
    )
    ss = rs.scope_spans.add()
    for i in range(SPANS):
        sp = ss.spans.add()
        sp.trace_id = os.urandom(16)
        sp.span_id = os.urandom(8)
        sp.name = f"GET /api/v1/items/{i % 50}"
        sp.kind = 2
        sp.start_time_unix_nano = time.time_ns()
        sp.end_time_unix_nano = sp.start_time_unix_nano + 1_000_000
        for a in range(10):
            sp.attributes.append(
                KeyValue(key=f"attr.{a}", value=AnyValue(string_value=f"value-{a}-{i % 17}"))
            )
    return req.SerializeToString()


def sink_main(port: int, http_port: int, counter) -> None:  # type: ignore[no-untyped-def]
    resp = ExportTraceServiceResponse().SerializeToString()

    async def export(raw: bytes, context: grpc.aio.ServicerContext) -> bytes:
        with counter.get_lock():
            counter.value += 1
        return resp

    async def serve() -> None:
        handler = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(export)},
        )
        server = grpc.aio.server(handlers=[handler])
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()

        async def post(request: web.Request) -> web.Response:
            await request.read()  # gunzipped by aiohttp, as a real receiver would
            with counter.get_lock():
                counter.value += 1
            return web.Response(body=resp, content_type="application/x-protobuf")

        app = web.Application(client_max_size=64 << 20)
        app.router.add_post("/v1/traces", post)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", http_port).start()
        await server.wait_for_termination()

    asyncio.run(serve())


class _Host(Host):
    def get_extension(self, id_: str):  # type: ignore[no-untyped-def]
        return None

    def report_fatal_error(self, err: BaseException) -> None:
        raise err


async def run_raw(port: int, raw: bytes, seconds: float) -> tuple[int, float]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    call = channel.unary_unary(METHOD, request_serializer=lambda b: b)
    sent = 0
    stop = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal sent
        while time.monotonic() < stop:
            await call(raw)
            sent += SPANS

    cpu0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(10)))
    cpu = time.process_time() - cpu0
    await channel.close()
    return sent, cpu


async def run_exporter(
    port: int,
    raw: bytes,
    seconds: float,
    compression: str,
    storage: str = "",
    http: bool = False,
) -> tuple[int, float]:
    logging.getLogger("bench").setLevel(logging.ERROR)  # queue-full warnings are expected
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("bench")
    settings = CreateSettings(
        id=ComponentID("otlp_http" if http else "otlp_grpc"),
        kind="exporter",
        logger=logging.getLogger("bench"),
        meter=meter,
    )
    common = {"compression": compression, "sending_queue": {"storage": storage}}
    if http:
        cfg = decode(HTTPConfig, {"endpoint": f"http://127.0.0.1:{port}", **common})
        exp = FACTORY_HTTP.create(settings, cfg, None)
    else:
        cfg = decode(Config, {"endpoint": f"127.0.0.1:{port}", "tls": {"insecure": True}, **common})
        exp = FACTORY.create(settings, cfg, None)
    await exp.start(_Host())
    cpu0 = time.process_time()
    fed = 0
    stop = time.monotonic() + seconds
    helper = exp.helper
    while time.monotonic() < stop:
        # keep the queue half full: measures the exporter, not a feeder spinning on refusals
        if helper.queue_size("traces") >= 500:
            await asyncio.sleep(0.0005)
            continue
        try:
            await exp.consume_traces(Traces(raw=raw, span_count=SPANS))
            fed += SPANS
        except RetryableError:
            await asyncio.sleep(0.001)
        if fed % (SPANS * 64) == 0:
            await asyncio.sleep(0)  # let the consumers run
    await exp.shutdown()  # drains what is queued: all of it is counted as sent
    cpu = time.process_time() - cpu0
    sent = 0
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name == "otelcol_exporter_sent_spans":  # one exporter id per run
                    sent = int(sum(p.value for p in m.data.data_points))
    assert sent == fed, (sent, fed)
    return sent, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    args = ap.parse_args()
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    port, http_port = ports
    counter = multiprocessing.Value("q", 0)
    sink = multiprocessing.Process(target=sink_main, args=(port, http_port, counter), daemon=True)
    sink.start()
    time.sleep(1.0)
    raw = build_request()
    print(f"request: {SPANS} spans x 10 attributes, {len(raw)} bytes; {os.cpu_count()} CPUs")
    rows = []
    tmp = tempfile.TemporaryDirectory()
    for name, coro in (
        ("raw grpc.aio (floor)", lambda: run_raw(port, raw, args.seconds)),
        ("otlp_grpc compression=none", lambda: run_exporter(port, raw, args.seconds, "none")),
        ("otlp_grpc compression=gzip", lambda: run_exporter(port, raw, args.seconds, "gzip")),
        (
            "otlp_grpc none + storage",
            lambda: run_exporter(port, raw, args.seconds, "none", tmp.name),
        ),
        (
            "otlp_http compression=none",
            lambda: run_exporter(http_port, raw, args.seconds, "none", http=True),
        ),
        (
            "otlp_http compression=gzip",
            lambda: run_exporter(http_port, raw, args.seconds, "gzip", http=True),
        ),
    ):
        before = counter.value
        t0 = time.monotonic()
        sent, cpu = asyncio.run(coro())
        wall = time.monotonic() - t0
        received = (counter.value - before) * SPANS
        rows.append((name, sent / wall, cpu / sent * 1e5, received == sent))
    base = rows[0][1]
    print(f"{'path':30} {'spans/s':>12} {'cpu-s/100k':>11} {'vs raw':>7}  sink==sent")
    for name, rate, cpu100k, ok in rows:
        print(f"{name:30} {rate:12,.0f} {cpu100k:11.3f} {rate / base:7.2f}  {ok}")
    sink.terminate()
    tmp.cleanup()
    sys.exit(0 if all(r[3] for r in rows) else 1)


if __name__ == "__main__":
    main()
