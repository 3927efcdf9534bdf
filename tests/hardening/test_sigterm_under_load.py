"""SIGTERM under load (issue #9, faults): while four clients send as fast as the relay
answers, the relay pipeline (otlp → memory_limiter → batch → otlp_grpc) gets SIGTERM. It
must exit 0 within `service.shutdown_timeout`, and every span it acknowledged — including
the RPCs in flight at the signal, the batch buffer and the exporter queue — must reach the
downstream pipeline. (tests/hardening/test_shutdown_drain.py: the spans goblock holds;
tests/pipeline/test_end_to_end.py: SIGTERM after a sequential burst.)"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .common import Pipeline, free_port

PER_REQ = 50
SHUTDOWN_TIMEOUT_S = 15


def relay_config(port: int, downstream: int) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{port}"}}}},
        "processors": {
            "memory_limiter": {"check_interval": "1s", "limit_mib": 1024},
            # a long timeout: at the signal the buffer holds what came since the last full
            # batch, which only the shutdown flush can deliver (requests under the sink's
            # 4 MiB limit)
            "batch": {"timeout": "3s", "send_batch_size": 20_000, "send_batch_max_size": 20_000},
        },
        "exporters": {
            "otlp_grpc": {
                "endpoint": f"127.0.0.1:{downstream}",
                "tls": {"insecure": True},
                "sending_queue": {"num_consumers": 2, "queue_size": 5000},
            }
        },
        "service": {
            "shutdown_timeout": f"{SHUTDOWN_TIMEOUT_S}s",
            "pipelines": {
                "traces": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "batch"],
                    "exporters": ["otlp_grpc"],
                }
            },
        },
    }


def sink_config(port: int, out: Path) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{port}"}}}},
        "exporters": {"file": {"path": str(out), "rotation": {"max_megabytes": 0}}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
    }


def req(first: int) -> ExportTraceServiceRequest:
    r = ExportTraceServiceRequest()
    ss = r.resource_spans.add().scope_spans.add()
    for i in range(PER_REQ):
        s = ss.spans.add()
        s.trace_id = (first + i).to_bytes(16, "big")
        s.span_id = (first + i).to_bytes(8, "big")
        s.name = "op"
        s.start_time_unix_nano, s.end_time_unix_nano = 1, 2
    return r


def delivered(path: Path) -> set[int]:
    from otel_goblock.receivers.otlp.otlpjson import decode_traces

    ids: set[int] = set()
    for line in path.read_text().split("\n")[:-1] if path.exists() else []:
        if '"resourceSpans"' in line:
            for rs in decode_traces(line).resource_spans:
                for ss in rs.scope_spans:
                    ids.update(int.from_bytes(s.span_id, "big") for s in ss.spans)
    return ids


def test_sigterm_under_load_exports_everything_acknowledged(tmp_path: Path) -> None:
    relay_port, sink_port = free_port(), free_port()
    out = tmp_path / "sink.jsonl"
    acked: list[set[int]] = [set() for _ in range(4)]
    stop = threading.Event()

    def client(k: int) -> None:
        with grpc.insecure_channel(f"127.0.0.1:{relay_port}") as ch:
            stub = trace_service_pb2_grpc.TraceServiceStub(ch)
            n = 0
            while not stop.is_set():
                first = (k * 10_000_000) + n * PER_REQ + 1
                n += 1
                try:
                    stub.Export(req(first), timeout=5)
                except grpc.RpcError:
                    if stop.is_set():
                        return
                    time.sleep(0.01)
                    continue
                acked[k].update(range(first, first + PER_REQ))

    with Pipeline(sink_config(sink_port, out), tmp_path, "sink"):
        relay = Pipeline(relay_config(relay_port, sink_port), tmp_path, "relay").start()
        threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(4)]
        for t in threads:
            t.start()
        try:
            time.sleep(4.5)
            assert relay.proc is not None
            before = relay.metrics().get("otelcol_exporter_sent_spans_total", 0)
            t0 = time.monotonic()
            relay.proc.send_signal(signal.SIGTERM)  # while the clients keep sending
            rc = relay.proc.wait(SHUTDOWN_TIMEOUT_S + 10)
            took = time.monotonic() - t0
        finally:
            stop.set()
            for t in threads:
                t.join(10)
            relay.stop()
        all_acked = set().union(*acked)
        assert rc == 0, relay.log()[-3000:]
        assert took < SHUTDOWN_TIMEOUT_S + 1, took
        assert len(all_acked) >= 20 * PER_REQ  # there was load
        assert len(all_acked) - before >= 10 * PER_REQ  # and the drain had work to do
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not all_acked <= delivered(out):
            time.sleep(0.3)
        missing = all_acked - delivered(out)
        assert not missing, f"{len(missing)} of {len(all_acked)} acknowledged spans not exported"
        print(
            f"acked {len(all_acked)} spans ({len(all_acked) - before:.0f} not yet sent at the "
            f"signal), SIGTERM → exit in {took:.2f}s, all exported"
        )
