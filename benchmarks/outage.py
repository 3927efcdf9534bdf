"""Exporter down for a minute: what is kept, what is lost, and whether the counters say so.

    .venv/bin/python benchmarks/outage.py                      # 60 s outage, defaults below
    .venv/bin/python benchmarks/outage.py --outage-s 120 --queue-size 2000

A relay pipeline (otlp → batch → otlp_grpc with a sending queue of `--queue-size`
requests) forwards to a sink pipeline (otlp → file). A client sends `--rate` requests/s of
10 spans each; the sink is stopped for `--outage-s`, then started again, and the client
keeps sending throughout. Each span has a unique id, so the sink's file tells exactly
which arrived.

Prints, and checks (exit 1 on a failure):
- no loss while the queue had room: no `otelcol_exporter_enqueue_failed_spans_total`
  before the sampled `otelcol_exporter_queue_size` reached `--queue-size`;
- loss beyond it counted exactly: spans the relay acknowledged == distinct spans written
  by the sink + `otelcol_exporter_enqueue_failed_spans_total` +
  `otelcol_exporter_send_failed_spans_total`;
- the batch processor's `otelcol_processor_batch_dropped_items_total` equals the
  enqueue failures (it is where the refused batches were dropped);
- duplicates (at-least-once: a send that timed out may arrive twice) are reported.
(The 10 s version runs in CI: tests/pipeline/test_end_to_end.py.)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from otel_goblock.receivers.otlp.otlpjson import decode_traces  # noqa: E402
from pipelines import Pipeline, free_port  # noqa: E402

SPANS_PER_REQUEST = 10


def sink_config(port: int, out: Path) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{port}"}}}},
        "exporters": {"file": {"path": str(out), "rotation": {"max_megabytes": 0}}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
    }


def relay_config(port: int, downstream: int, queue_size: int) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{port}"}}}},
        "processors": {"batch": {"timeout": "100ms", "send_batch_size": 100}},
        "exporters": {
            "otlp_grpc": {
                "endpoint": f"127.0.0.1:{downstream}",
                "tls": {"insecure": True},
                "timeout": "2s",
                "sending_queue": {"queue_size": queue_size, "num_consumers": 4},
                "retry_on_failure": {"initial_interval": "1s", "max_interval": "5s"},
            }
        },
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["batch"],
                    "exporters": ["otlp_grpc"],
                }
            }
        },
    }


def request(seq: int) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    ss = req.resource_spans.add().scope_spans.add()
    for i in range(SPANS_PER_REQUEST):
        s = ss.spans.add()
        sid = seq * SPANS_PER_REQUEST + i + 1
        s.trace_id = sid.to_bytes(16, "big")
        s.span_id = sid.to_bytes(8, "big")
        s.name = "op"
        s.start_time_unix_nano, s.end_time_unix_nano = 1, 2
    return req


def written(path: Path) -> tuple[int, int]:
    """(distinct spans, duplicates) in the sink's file."""
    seen: set[bytes] = set()
    dups = 0
    if path.exists():
        for line in path.read_text().splitlines():
            if '"resourceSpans"' not in line:
                continue
            for rs in decode_traces(line).resource_spans:
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        if s.span_id in seen:
                            dups += 1
                        seen.add(s.span_id)
    return len(seen), dups


class Client:
    """Sends one request every 1/rate s, once each (no retry), counting acknowledged spans."""

    def __init__(self, port: int, rate: float) -> None:
        self.port, self.rate = port, rate
        self.acked = self.refused = self.seq = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as ch:
            stub = trace_service_pb2_grpc.TraceServiceStub(ch)
            nxt = time.monotonic()
            while not self._stop.is_set():
                try:
                    stub.Export(request(self.seq), timeout=5)
                    self.acked += SPANS_PER_REQUEST
                except grpc.RpcError:
                    self.refused += SPANS_PER_REQUEST
                self.seq += 1
                nxt += 1 / self.rate
                time.sleep(max(0.0, nxt - time.monotonic()))

    def start(self) -> Client:
        self._t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--outage-s", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=20.0, help="requests/s of 10 spans")
    ap.add_argument("--queue-size", type=int, default=300, help="exporter queue (requests)")
    ap.add_argument("--before-s", type=float, default=5.0)
    ap.add_argument("--after-s", type=float, default=5.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="goblock-outage-"))
    out = work / "sink.jsonl"
    sink_port, relay_port = free_port(), free_port()
    sink = Pipeline(sink_config(sink_port, out), work, "sink").start()
    relay = Pipeline(relay_config(relay_port, sink_port, args.queue_size), work, "relay").start()
    failures: list[str] = []
    peak_queue = 0.0
    first_failure_queue: float | None = None
    client = Client(relay_port, args.rate).start()
    try:
        time.sleep(args.before_s)
        sink.stop()
        print(f"outage: sink down for {args.outage_s:g}s, client at {args.rate:g} req/s")
        t_end = time.monotonic() + args.outage_s
        while time.monotonic() < t_end:
            m = relay.metrics()
            q = m.get("otelcol_exporter_queue_size", 0.0)
            peak_queue = max(peak_queue, q)
            if first_failure_queue is None and m.get(
                "otelcol_exporter_enqueue_failed_spans_total", 0
            ):
                first_failure_queue = q
            time.sleep(0.5)
        sink = Pipeline(sink_config(sink_port, out), work, "sink2").start()
        time.sleep(args.after_s)
        client.stop()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            m = relay.metrics()
            lost = m.get("otelcol_exporter_enqueue_failed_spans_total", 0) + m.get(
                "otelcol_exporter_send_failed_spans_total", 0
            )
            if m.get("otelcol_exporter_queue_size", 0) == 0 and written(out)[0] + lost >= (
                client.acked
            ):
                break
            time.sleep(1)
        time.sleep(1)
        m = relay.metrics()
    finally:
        if client._t.is_alive():
            client.stop()
        relay.stop()
        sink.stop()
    got, dups = written(out)
    enq = m.get("otelcol_exporter_enqueue_failed_spans_total", 0)
    send_failed = m.get("otelcol_exporter_send_failed_spans_total", 0)
    batch_dropped = m.get("otelcol_processor_batch_dropped_items_total", 0)
    print(
        f"  client: sent {client.seq * SPANS_PER_REQUEST} spans, acked {client.acked}, "
        f"refused {client.refused}\n"
        f"  sink: {got} distinct spans written, {dups} duplicates\n"
        f"  relay: enqueue_failed {enq:.0f}, send_failed {send_failed:.0f}, batch dropped "
        f"{batch_dropped:.0f}; queue peak {peak_queue:.0f}/{args.queue_size} requests"
        + (
            f", first enqueue failure at queue size {first_failure_queue:.0f}"
            if first_failure_queue is not None
            else ", never full"
        )
    )
    if first_failure_queue is not None and first_failure_queue < args.queue_size * 0.9:
        failures.append(f"enqueue failures began at queue size {first_failure_queue:.0f}")
    if got + enq + send_failed != client.acked:
        failures.append(
            f"acked {client.acked} != written {got} + enqueue_failed {enq:.0f} + "
            f"send_failed {send_failed:.0f} ({got + enq + send_failed - client.acked:+.0f})"
        )
    if batch_dropped != enq:
        failures.append(f"batch dropped {batch_dropped:.0f} != enqueue_failed {enq:.0f}")
    print("  result: " + ("OK" if not failures else "FAIL: " + "; ".join(failures)))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
