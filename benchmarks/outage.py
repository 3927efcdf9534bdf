"""Exporter down for a minute: what is kept, what is lost, and whether the counters say so.

    .venv/bin/python benchmarks/outage.py                      # 60 s outage, defaults below
    .venv/bin/python benchmarks/outage.py --outage-s 120 --queue-size 2000

A relay pipeline (otlp → batch → otlp_grpc with a sending queue of `--queue-size`
requests) forwards to a sink pipeline (otlp → file). A client sends `--rate` requests/s of
10 spans each; the sink is stopped for `--outage-s`, then started again, and the client
keeps sending throughout. Each span has a unique id, so the sink's file tells exactly
which arrived.

Prints, and checks (exit 1 on a failure):
- no loss while the queue had room: the first `otelcol_exporter_enqueue_failed_spans_total`
  is seen with `otelcol_exporter_queue_size` at `--queue-size` (full), and every span the
  relay acknowledged before that moment (less one batch timeout) reached the sink;
- loss beyond it counted exactly: spans the relay acknowledged == distinct spans written
  by the sink + `otelcol_exporter_enqueue_failed_spans_total` +
  `otelcol_exporter_send_failed_spans_total`;
- the batch processor's `otelcol_processor_batch_dropped_items_total` equals the
  enqueue failures (it is where the refused batches were dropped);
- duplicates (at-least-once: a send that timed out may arrive twice) are reported.
- the loss actually happened and is not zero-by-construction: `--queue-size` smaller
  than what the outage produces makes both halves (kept, lost) non-empty.
A 12 s version of the same run is a test: tests/hardening/test_exporter_outage.py
(calls `run()` below); tests/pipeline/test_end_to_end.py has a 10 s outage within the
queue (no loss at all) and an overflow without outage.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
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


class Client:
    """Sends one request every 1/rate s, once each (no retry), recording when each request
    was acknowledged."""

    def __init__(self, port: int, rate: float) -> None:
        self.port, self.rate = port, rate
        self.acked = self.refused = self.seq = 0
        self.ack_times: list[tuple[float, int]] = []  # (monotonic time, seq) of each ack
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
                    self.ack_times.append((time.monotonic(), self.seq))
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


def span_ids(seq: int) -> list[bytes]:
    return [(seq * SPANS_PER_REQUEST + i + 1).to_bytes(8, "big") for i in range(SPANS_PER_REQUEST)]


def written_ids(path: Path) -> tuple[set[bytes], int]:
    """(distinct span ids, duplicates) in the sink's file."""
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
    return seen, dups


@dataclass
class Result:
    outage_s: float
    queue_size: int
    sent: int = 0  # spans the client sent
    acked: int = 0  # spans the relay acknowledged
    refused: int = 0  # spans the relay refused (the client was told)
    written: int = 0  # distinct spans the sink wrote
    duplicates: int = 0
    enqueue_failed: float = 0.0
    send_failed: float = 0.0
    batch_dropped: float = 0.0
    peak_queue: float = 0.0
    first_failure_queue: float | None = None  # queue size when the first loss was seen
    kept_in_outage: int = 0  # spans acked during the outage, before the queue was full, delivered
    lost_before_full: int = 0  # spans acked before the queue was full but not delivered
    failures: list[str] = field(default_factory=list)

    def report(self) -> str:
        full = (
            f", first enqueue failure seen at queue size {self.first_failure_queue:.0f}"
            if self.first_failure_queue is not None
            else ", never full"
        )
        return (
            f"outage {self.outage_s:g}s, queue_size {self.queue_size} requests\n"
            f"  client: sent {self.sent} spans, acked {self.acked}, refused {self.refused}\n"
            f"  sink: {self.written} distinct spans written, {self.duplicates} duplicates\n"
            f"  relay: enqueue_failed {self.enqueue_failed:.0f}, send_failed "
            f"{self.send_failed:.0f}, batch dropped {self.batch_dropped:.0f}; queue peak "
            f"{self.peak_queue:.0f}/{self.queue_size} requests{full}\n"
            f"  kept: {self.kept_in_outage} spans acked during the outage before the queue "
            f"was full, all delivered; lost before full: {self.lost_before_full}\n"
            "  result: " + ("OK" if not self.failures else "FAIL: " + "; ".join(self.failures))
        )


def run(
    outage_s: float = 60.0,
    rate: float = 20.0,
    queue_size: int = 300,
    before_s: float = 5.0,
    after_s: float = 5.0,
    workdir: Path | None = None,
) -> Result:
    """One outage: sink up, down for `outage_s`, up again; the checks in the docstring."""
    work = workdir or Path(tempfile.mkdtemp(prefix="goblock-outage-"))
    out = work / "sink.jsonl"
    res = Result(outage_s, queue_size)
    sink_port, relay_port = free_port(), free_port()
    sink = Pipeline(sink_config(sink_port, out), work, "sink").start()
    relay = Pipeline(relay_config(relay_port, sink_port, queue_size), work, "relay").start()
    client = Client(relay_port, rate).start()
    # the last moment the relay was seen with no loss at all, and when the outage began
    t_no_loss = t_down = 0.0
    m: dict[str, float] = {}
    try:
        time.sleep(before_s)
        sink.stop()
        t_down = time.monotonic()
        t_end = t_down + outage_s
        while time.monotonic() < t_end:
            t = time.monotonic()
            m = relay.metrics()
            q = m.get("otelcol_exporter_queue_size", 0.0)
            res.peak_queue = max(res.peak_queue, q)
            if not m.get("otelcol_exporter_enqueue_failed_spans_total", 0):
                t_no_loss = t
            elif res.first_failure_queue is None:
                res.first_failure_queue = q
            time.sleep(0.5)
        sink = Pipeline(sink_config(sink_port, out), work, "sink2").start()
        time.sleep(after_s)
        client.stop()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            m = relay.metrics()
            lost = m.get("otelcol_exporter_enqueue_failed_spans_total", 0) + m.get(
                "otelcol_exporter_send_failed_spans_total", 0
            )
            if (
                m.get("otelcol_exporter_queue_size", 0) == 0
                and len(written_ids(out)[0]) + lost >= client.acked
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
    ids, res.duplicates = written_ids(out)
    res.sent, res.acked, res.refused = client.seq * SPANS_PER_REQUEST, client.acked, client.refused
    res.written = len(ids)
    res.enqueue_failed = m.get("otelcol_exporter_enqueue_failed_spans_total", 0)
    res.send_failed = m.get("otelcol_exporter_send_failed_spans_total", 0)
    res.batch_dropped = m.get("otelcol_processor_batch_dropped_items_total", 0)
    # a span acked before t_no_loss - 1 s sat in a batch (timeout 100 ms; 1 s leaves room
    # for a loaded machine) that entered the queue while nothing had been refused yet: it
    # must have been delivered
    horizon = (t_no_loss if res.first_failure_queue is not None else t_end + after_s) - 1.0
    for t, seq in client.ack_times:
        if t >= horizon:
            break
        delivered = sum(i in ids for i in span_ids(seq))
        res.lost_before_full += SPANS_PER_REQUEST - delivered
        if t >= t_down:
            res.kept_in_outage += delivered
    if res.lost_before_full:
        res.failures.append(f"{res.lost_before_full} spans lost before the queue was full")
    if res.first_failure_queue is not None and res.first_failure_queue < queue_size:
        res.failures.append(
            f"enqueue failures seen at queue size {res.first_failure_queue:.0f} < {queue_size}"
        )
    if res.written + res.enqueue_failed + res.send_failed != res.acked:
        res.failures.append(
            f"acked {res.acked} != written {res.written} + enqueue_failed "
            f"{res.enqueue_failed:.0f} + send_failed {res.send_failed:.0f} "
            f"({res.written + res.enqueue_failed + res.send_failed - res.acked:+.0f})"
        )
    if res.batch_dropped != res.enqueue_failed:
        res.failures.append(
            f"batch dropped {res.batch_dropped:.0f} != enqueue_failed {res.enqueue_failed:.0f}"
        )
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--outage-s", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=20.0, help="requests/s of 10 spans")
    ap.add_argument("--queue-size", type=int, default=300, help="exporter queue (requests)")
    ap.add_argument("--before-s", type=float, default=5.0)
    ap.add_argument("--after-s", type=float, default=5.0)
    args = ap.parse_args()
    print(f"outage: sink down for {args.outage_s:g}s, client at {args.rate:g} req/s")
    res = run(args.outage_s, args.rate, args.queue_size, args.before_s, args.after_s)
    print(res.report())
    return 0 if not res.failures else 1


if __name__ == "__main__":
    sys.exit(main())
