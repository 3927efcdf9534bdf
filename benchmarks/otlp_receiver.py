"""How many spans/s the otlp receiver's gRPC server accepts into a no-op consumer.

The receiver runs in this process, pinned to one core, handing every request to a consumer
that only counts. A separate load-generator process, pinned to the other core, sends
OTLP/gRPC requests of 512 spans x 10 attributes as fast as they are accepted:
`build/bin/otlp-load` (Go, pre-serialized requests; built by scripts/build_otelcol.sh) when
present, otherwise a Python process sending pre-serialized bytes with grpc.aio.

Printed side by side: spans/s accepted, server CPU (share of its core), spans per
CPU-second and CPU-seconds per 100k spans for
  otlp receiver    the real component (parse with upb, count, telemetry, consumer call);
  bare grpc.aio    the same server shape whose handler does nothing: the transport's floor;
  grpc.aio + upb parse  that handler parsing and counting: the receiver minus its own code;
  upb parse+count  FromString + count in a loop: the receiver's work if gRPC cost nothing;
and the ratios between them, plus the peak RSS. `--json` adds the OTLP/JSON codec
(receivers/otlp/otlpjson.py, also used by the file exporter) against json_format.

    .venv/bin/python benchmarks/otlp_receiver.py [--seconds 10] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from otel_goblock.receivers.otlp.config import Config
from otel_goblock.receivers.otlp.factory import FACTORY

from otel_goblock.component import ComponentID, Consumers, CreateSettings
from otel_goblock.config import decode
from otel_goblock.pdata import Traces, count_spans

ROOT = Path(__file__).resolve().parents[1]
GO_LOAD = ROOT / "build" / "bin" / "otlp-load"
METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPANS, ATTRS = 512, 10


def build_request(seed: int) -> bytes:
    rnd = __import__("random").Random(seed)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="b")))
    ss = rs.scope_spans.add()
    ss.scope.name = "bench"
    for i in range(SPANS):
        sp = ss.spans.add()
        sp.trace_id = rnd.randbytes(16)
        sp.span_id = rnd.randbytes(8)
        sp.parent_span_id = rnd.randbytes(8)
        sp.name = f"GET /api/v1/items/{i % 50}"
        sp.kind = 2
        sp.start_time_unix_nano = 1_700_000_000_000_000_000 + i * 1000
        sp.end_time_unix_nano = sp.start_time_unix_nano + 250_000
        for a in range(ATTRS):
            if a % 3 == 0:
                value = AnyValue(int_value=rnd.randrange(1 << 30))
            else:
                value = AnyValue(string_value=f"value-{a}-{rnd.randrange(1000)}")
            sp.attributes.append(KeyValue(key=f"attr.key.{a}", value=value))
    return req.SerializeToString()


class CountingConsumer:
    """No-op downstream: counts spans, keeps nothing."""

    def __init__(self) -> None:
        self.spans = 0

    async def consume_traces(self, data: Traces) -> None:
        self.spans += data.span_count


def python_load(target: str, seconds: float, concurrency: int, cpu: int | None) -> None:
    """Fallback load generator (child process): pre-serialized bytes, N in flight."""
    import grpc

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    bodies = [build_request(s) for s in range(4)]

    async def run() -> None:
        async with grpc.aio.insecure_channel(target) as ch:
            call = ch.unary_unary(METHOD, request_serializer=None, response_deserializer=None)
            deadline = time.monotonic() + seconds

            async def worker(k: int) -> None:
                i = k
                while time.monotonic() < deadline:
                    await call(bodies[i % len(bodies)], timeout=10)
                    i += 1

            await asyncio.gather(*(worker(k) for k in range(concurrency)))

    asyncio.run(run())


def cpu_self() -> float:
    t = os.times()
    return t.user + t.system


def parse_ceiling(seconds: float = 2.0) -> float:
    """Spans per CPU-second for upb parse + count alone (CPU time, so that other load on
    the machine does not count against it)."""
    bodies = [build_request(s) for s in range(4)]
    n, i, t0 = 0, 0, time.process_time()
    while time.process_time() - t0 < seconds:
        n += count_spans(ExportTraceServiceRequest.FromString(bodies[i % 4]))
        i += 1
    return n / (time.process_time() - t0)


class BareServer:
    """The floor: a grpc.aio server whose Export handler neither parses nor counts spans
    (every request is assumed to hold SPANS spans). What gRPC + asyncio alone cost.
    With `parse`, the handler also parses and counts with upb: gRPC + parse, without any
    of the receiver's own code (telemetry, pdata, consumer call, error mapping)."""

    def __init__(self, parse: bool = False) -> None:
        self.parse = parse
        self.spans = 0
        self._server = None
        self.grpc_address = ""

    async def start(self, host: object = None) -> None:
        import grpc

        async def export(request: bytes, context: object) -> bytes:
            if self.parse:
                self.spans += count_spans(ExportTraceServiceRequest.FromString(request))
            else:
                self.spans += SPANS
            return b""

        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 4 << 20)])
        handler = grpc.unary_unary_rpc_method_handler(export)
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": handler}
                )
            ]
        )
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server
        self.grpc_address = f"127.0.0.1:{port}"

    async def shutdown(self) -> None:
        await self._server.stop(0)


async def measure(
    name: str, server: object, counted: object, args: argparse.Namespace, load_cpu: int | None
) -> dict[str, float]:
    """Start `server`, load it from a separate process, and measure the steady window."""
    await server.start(None)
    target = server.grpc_address
    use_go = GO_LOAD.exists() and not args.python_load
    if use_go:
        cmd = [
            str(GO_LOAD),
            f"--target={target}",
            f"--duration={args.seconds + args.warmup + 1}s",
            f"--concurrency={args.concurrency}",
            f"--spans={SPANS}",
            f"--attrs={ATTRS}",
        ]
        if load_cpu is not None:
            cmd = ["taskset", "-c", str(load_cpu), *cmd]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    else:
        proc = multiprocessing.get_context("spawn").Process(
            target=python_load,
            args=(target, args.seconds + args.warmup + 1, args.concurrency, load_cpu),
        )
        proc.start()
    await asyncio.sleep(args.warmup)
    s0, c0, t0 = counted.spans, cpu_self(), time.monotonic()
    await asyncio.sleep(args.seconds)
    s1, c1, t1 = counted.spans, cpu_self(), time.monotonic()
    if use_go:
        out, _ = await asyncio.to_thread(proc.communicate)
        for line in out.decode().strip().splitlines()[-1:]:
            with contextlib.suppress(ValueError):
                report = json.loads(line)
                print(
                    f"  [{name}] load generator: {report.get('sent_requests')} requests, "
                    f"codes {report.get('codes')}"
                )
    else:
        await asyncio.to_thread(proc.join)
    await server.shutdown()
    spans, cpu, wall = s1 - s0, c1 - c0, t1 - t0
    return {"spans_s": spans / wall, "cpu_core": cpu / wall, "per_cpu_s": spans / cpu if cpu else 0}


def json_codec() -> None:
    """OTLP/JSON encode/decode of the same requests: our codec vs json_format, per CPU-s."""
    import base64

    from google.protobuf import json_format
    from otel_goblock.receivers.otlp import otlpjson

    req = ExportTraceServiceRequest.FromString(build_request(1))
    body = otlpjson.encode_traces(req)

    def ref_encode() -> bytes:  # json_format + the hex-id fix-up it needs for OTLP
        obj = json_format.MessageToDict(req, use_integers_for_enums=True)
        for span in obj["resourceSpans"][0]["scopeSpans"][0]["spans"]:
            for k in ("traceId", "spanId", "parentSpanId"):
                span[k] = base64.b64decode(span[k]).hex()
        return orjson.dumps(obj)

    def ref_decode() -> ExportTraceServiceRequest:
        obj = orjson.loads(body)
        for span in obj["resourceSpans"][0]["scopeSpans"][0]["spans"]:
            for k in ("traceId", "spanId", "parentSpanId"):
                span[k] = base64.b64encode(bytes.fromhex(span[k])).decode()
        return json_format.ParseDict(obj, ExportTraceServiceRequest())

    def rate(fn: object, seconds: float = 1.5) -> float:
        n, t0 = 0, time.process_time()
        while time.process_time() - t0 < seconds:
            fn()
            n += SPANS
        return n / (time.process_time() - t0)

    enc, ref_enc = rate(lambda: otlpjson.encode_traces(req)), rate(ref_encode)
    dec, ref_dec = rate(lambda: otlpjson.decode_traces(body)), rate(ref_decode)
    print(f"OTLP/JSON ({len(body) // SPANS} bytes/span)   spans/CPU-s   json_format   ratio")
    print(f"  encode                      {enc:>10,.0f}  {ref_enc:>12,.0f}  {enc / ref_enc:>5.1f}x")
    print(f"  decode                      {dec:>10,.0f}  {ref_dec:>12,.0f}  {dec / ref_dec:>5.1f}x")


async def main(args: argparse.Namespace) -> None:
    ncpu = os.cpu_count() or 1
    rx_cpu, load_cpu = (0, 1) if ncpu >= 2 and not args.no_pin else (None, None)
    if rx_cpu is not None:
        os.sched_setaffinity(0, {rx_cpu})
    loader = "Go otlp-load" if GO_LOAD.exists() and not args.python_load else "Python grpc.aio"
    print(
        f"load: {loader} in a separate process, {args.concurrency} requests in flight, "
        f"{SPANS} spans x {ATTRS} attributes per request; "
        f"server core {rx_cpu if rx_cpu is not None else 'unpinned'}, "
        f"load core {load_cpu if load_cpu is not None else 'unpinned'}; "
        f"{args.seconds:g} s measured after {args.warmup:g} s warm-up"
    )
    consumer = CountingConsumer()
    settings = CreateSettings(
        id=ComponentID("otlp"),
        kind="receiver",
        logger=logging.getLogger("bench"),
        meter=MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("bench"),
    )
    cfg = decode(Config, {"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}})
    rx = FACTORY.create(settings, cfg, Consumers(traces=consumer))

    results = {"otlp receiver": await measure("receiver", rx, consumer, args, load_cpu)}
    if not args.receiver_only:
        bare = BareServer()
        results["bare grpc.aio"] = await measure("bare", bare, bare, args, load_cpu)
        parsing = BareServer(parse=True)
        results["grpc.aio + upb parse"] = await measure("parse", parsing, parsing, args, load_cpu)
    ceiling = parse_ceiling()

    print(f"{'':26}{'spans/s':>12}{'server CPU':>12}{'spans/CPU-s':>13}{'CPU-s/100k':>12}")
    for name, r in results.items():
        per100k = 1e5 / r["per_cpu_s"] if r["per_cpu_s"] else float("nan")
        print(
            f"{name:26}{r['spans_s']:>12,.0f}{r['cpu_core']:>11.0%} "
            f"{r['per_cpu_s']:>12,.0f}{per100k:>12.3f}"
        )
    print(f"{'upb parse+count alone':26}{'':>12}{'':>12}{ceiling:>13,.0f}{1e5 / ceiling:>12.3f}")
    # ratios per CPU-second: robust to other load on a shared machine, unlike spans/s
    rx_eff = results["otlp receiver"]["per_cpu_s"]
    if "bare grpc.aio" in results:
        bare_eff = results["bare grpc.aio"]["per_cpu_s"]
        parse_eff = results["grpc.aio + upb parse"]["per_cpu_s"]
        print(f"receiver / bare grpc.aio  : {rx_eff / bare_eff:.2f}x (spans per CPU-second)")
        print(f"receiver / grpc.aio+parse : {rx_eff / parse_eff:.2f}x (spans per CPU-second)")
    print(f"receiver / parse ceiling  : {rx_eff / ceiling:.2f}x (spans per CPU-second)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process  : {peak:.0f} MiB")
    if args.json:
        json_codec()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--python-load", action="store_true", help="use the Python load generator")
    ap.add_argument("--json", action="store_true", help="also time the OTLP/JSON codec")
    ap.add_argument("--receiver-only", action="store_true", help="skip the bare grpc.aio run")
    ap.add_argument("--no-pin", action="store_true", help="do not pin receiver and load to cores")
    asyncio.run(main(ap.parse_args()))
    sys.exit(0)
