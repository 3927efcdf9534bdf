"""SIGTERM right after spans were accepted: everything the receiver acknowledged must be
exported, including the spans the goblock processor is holding for `join_delay` (spans of
an observed process). The processors must therefore shut down upstream first
(goblock releases its held spans into batch, then batch flushes), as the collector does.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from .common import Pipeline, file_spans, free_port, grpc_export, request
from .gbfx import gbfx_binary

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ebpf"))
from ebpf_harness import Proc, require_ebpf


def spans_of_pid(pid: int, n: int) -> bytes:
    req = ExportTraceServiceRequest.FromString(request(n))
    req.resource_spans[0].resource.attributes.append(
        KeyValue(key="process.pid", value=AnyValue(int_value=pid))
    )
    return req.SerializeToString()


@pytest.mark.ebpf
def test_sigterm_exports_spans_goblock_is_holding(tmp_path: Path) -> None:
    require_ebpf()
    exe = tmp_path / "gbfx"
    shutil.copy2(gbfx_binary(), exe)
    port = free_port()
    out = tmp_path / "out.jsonl"
    cfg = {
        "receivers": {
            "otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{port}"}}},
            "ebpf": {"targets": [{"exe": str(exe)}], "sched": False, "tcp": False},
        },
        "processors": {"goblock": {"join_delay": "5s"}, "batch": {"timeout": "100ms"}},
        "exporters": {"file": {"path": str(out)}},
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": ["otlp", "ebpf"],
                    "processors": ["goblock", "batch"],
                    "exporters": ["file"],
                }
            }
        },
    }
    p = Pipeline(cfg, tmp_path).start(timeout=60)
    target = Proc([str(exe), "pipe", "20", "200"])
    try:
        # the target is observed once its events reached goblock
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if p.metrics().get("goblock_events_accepted_total", 0) > 0:
                break
            time.sleep(0.2)
        assert grpc_export(f"127.0.0.1:{port}", spans_of_pid(target.pid, 7)) == (grpc.StatusCode.OK)
        time.sleep(0.5)
        assert p.metrics().get("goblock_spans_passed_through_total", 0) == 0  # held
    finally:
        assert p.stop() == 0
        target.p.kill()
    assert file_spans(out) == 7
