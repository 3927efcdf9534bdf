"""Helpers of the grpc probe tests and benchmark: the demo service as a target, a BCC
module with the grpc probes, and a tiny OTLP/gRPC trace sink for the demo's real spans.

The demo is started directly (not through scripts/services.sh) on free ports, so tests
of several helpers can run at once on this machine.
"""

from __future__ import annotations

import ctypes as ct
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from concurrent import futures
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
BPF = REPO / "bpf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_demo() -> Path:
    subprocess.run(
        [str(REPO / "scripts" / "build_demo.sh")],
        check=True,
        cwd=REPO,
        capture_output=True,
        timeout=900,
    )
    return REPO / "build" / "demo-service"


class SpanSink:
    """An OTLP/gRPC TraceService keeping every span the demo exports (real protobuf)."""

    def __init__(self) -> None:
        import grpc
        from opentelemetry.proto.collector.trace.v1 import (
            trace_service_pb2 as pb,
        )
        from opentelemetry.proto.collector.trace.v1 import (
            trace_service_pb2_grpc as rpc,
        )

        self.spans: list[Any] = []
        self._lock = threading.Lock()
        sink = self

        class Servicer(rpc.TraceServiceServicer):
            def Export(self, request, context):  # type: ignore[no-untyped-def]
                with sink._lock:
                    for rs in request.resource_spans:
                        for ss in rs.scope_spans:
                            sink.spans.extend(ss.spans)
                return pb.ExportTraceServiceResponse()

        self.port = free_port()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        rpc.add_TraceServiceServicer_to_server(Servicer(), self.server)
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.server.start()

    def find(self, trace_id_hex: str, name_part: str, timeout_s: float = 5.0) -> list[Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                got = [
                    s
                    for s in self.spans
                    if s.trace_id.hex() == trace_id_hex and name_part in s.name
                ]
            if got or time.monotonic() > deadline:
                return got
            time.sleep(0.1)

    def stop(self) -> None:
        self.server.stop(0)


class Demo:
    """The demo service on a free port, exporting spans to a SpanSink."""

    def __init__(self, exe: Path, sink: SpanSink | None) -> None:
        self.exe = exe
        self.port = free_port()
        endpoint = f"http://127.0.0.1:{sink.port if sink else free_port()}"
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_METRICS_EXPORTER": "none",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        self.proc = subprocess.Popen(
            [str(exe), "-listen", f"127.0.0.1:{self.port}"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{exe} did not answer /healthz")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def get(self, path: str, timeout: float = 60) -> dict[str, Any]:
        with urllib.request.urlopen(self.base + path, timeout=timeout) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def compile_grpc_module() -> Any:
    """A BCC module of goblock.h + grpc.bpf.c with one ring-buffer callback collecting
    copies of every record (a ring buffer opens once per map)."""
    from otel_goblock.receivers.ebpf.btf import task_fsbase_offset
    from otel_goblock.receivers.ebpf.grpcprobes import decode_record
    from otel_goblock.receivers.ebpf.program import import_bcc

    text = (BPF / "goblock.h").read_text() + "\n" + (BPF / "grpc.bpf.c").read_text()
    b = import_bcc().BPF(text=text, cflags=[f"-DGOBLOCK_FSBASE_OFF={task_fsbase_offset()}"])
    b.records = []

    def on_event(_ctx: Any, data: Any, _size: int) -> None:
        b.records.append(decode_record(data))

    b["grpc_events"].open_ring_buffer(on_event)
    return b


def drain(b: Any, pid: int, settle_s: float = 0.3) -> list[Any]:
    """Every record of `pid` so far (and forget them)."""
    time.sleep(settle_s)
    # records are submitted without waking the reader (goblock.h wakeup_flags): consume
    # drains what poll's wakeups would not announce
    b.ring_buffer_poll(30)
    b.ring_buffer_consume()
    mine = [r for r in b.records if r.pid == pid]
    b.records[:] = [r for r in b.records if r.pid != pid]
    return mine


def hits_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


_ = ct  # ctypes is what the records are
