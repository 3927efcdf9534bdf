"""Persistent sending queue, whole pipeline (issue #9, faults): `kill -9` a running
`otel-goblock run` (otlp receiver → otlp_grpc exporter with `sending_queue.storage`)
mid-stream while its downstream is down, start it again on the same directory, bring the
downstream up: every span the receiver acknowledged arrives. (The exporter-level version is
tests/exporters/test_exporter_persistent_queue.py; this one goes through the receiver's
acknowledgement, which is what a client relies on.)"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import grpc

from .common import Pipeline, free_port, grpc_export, request

PER_REQ = 5


def relay_config(port: int, downstream: int, storage: Path) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{port}"}}}},
        "exporters": {
            "otlp_grpc": {
                "endpoint": f"127.0.0.1:{downstream}",
                "tls": {"insecure": True},
                "sending_queue": {"storage": str(storage), "queue_size": 100_000},
                "retry_on_failure": {"initial_interval": "200ms", "max_interval": "500ms"},
            }
        },
        # no batch processor: it acknowledges on entering its in-memory buffer, which a
        # kill -9 loses (docs/guarantees.md)
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["otlp_grpc"]}}},
    }


def sink_config(port: int, out: Path) -> dict[str, Any]:
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{port}"}}}},
        "exporters": {"file": {"path": str(out)}},
        "service": {"pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["file"]}}},
    }


def delivered_ids(path: Path) -> set[int]:
    from otel_goblock.receivers.otlp.otlpjson import decode_traces

    ids: set[int] = set()
    if path.exists():
        for line in path.read_text().splitlines():
            if '"resourceSpans"' in line:
                for rs in decode_traces(line).resource_spans:
                    for ss in rs.scope_spans:
                        ids.update(int.from_bytes(s.span_id, "big") for s in ss.spans)
    return ids


def test_kill_9_mid_stream_loses_nothing_the_receiver_acknowledged(tmp_path: Path) -> None:
    relay_port, sink_port = free_port(), free_port()
    storage = tmp_path / "queue"
    out = tmp_path / "sink.jsonl"
    acked: set[int] = set()  # span ids of acknowledged requests
    refused = 0
    stop = threading.Event()

    def client() -> None:
        nonlocal refused
        k = 0
        while not stop.is_set():
            first = k * PER_REQ + 1
            code = grpc_export(f"127.0.0.1:{relay_port}", request(PER_REQ, first_id=first))
            if code == grpc.StatusCode.OK:
                acked.update(range(first, first + PER_REQ))
            else:
                refused += 1
            k += 1

    relay = Pipeline(relay_config(relay_port, sink_port, storage), tmp_path, "relay").start()
    t = threading.Thread(target=client, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while len(acked) < 200 * PER_REQ and time.monotonic() < deadline:
            time.sleep(0.05)
        assert relay.stop(signal.SIGKILL) == -signal.SIGKILL  # mid-stream: no drain
        stop.set()
        t.join(15)
        n_acked = len(acked)
        assert n_acked >= 200 * PER_REQ
        stored = list((storage / "otlp_grpc" / "traces").glob("*.pb"))
        assert stored, "nothing on disk: the downstream was down, the queue must hold it"

        relay = Pipeline(relay_config(relay_port, sink_port, storage), tmp_path, "relay2").start()
        with Pipeline(sink_config(sink_port, out), tmp_path, "sink"):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not acked <= delivered_ids(out):
                time.sleep(0.3)
            missing = acked - delivered_ids(out)
            assert not missing, f"{len(missing)} of {n_acked} acknowledged spans lost"
            # all sent: the directory is empty again
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and list(storage.rglob("*.pb")):
                time.sleep(0.2)
            assert not list(storage.rglob("*.pb"))
    finally:
        stop.set()
        relay.stop()
