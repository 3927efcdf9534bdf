"""The same probes on grpc-go v1.64 (fixtures/oldgrpc: the demo's gRPC scenarios without
OTel), where the send function is `(*http2Client).Write(s *Stream, ...)` and Stream.id
sits at offset 0: names and layouts must come from the binary, not from 1.85's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from grpc_harness import compile_grpc_module, drain

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gotools import go_build
from otel_goblock.processors.goblock import grpc_diagnosis as gd
from otel_goblock.receivers.ebpf import grpcprobes as gp

from otel_goblock.clock import MonotonicClock

FIXTURES = Path(__file__).parent / "fixtures" / "oldgrpc"
CLOCK = MonotonicClock()


@pytest.fixture(scope="module")
def oldgrpc() -> Path:
    return go_build(FIXTURES, ".", "oldgrpc")


def test_plan_picks_the_v164_names(oldgrpc: Path) -> None:
    plan = gp.plan_for(str(oldgrpc))
    assert plan.grpc_version.startswith("v1.64.")
    assert plan.functions["grpc_client_write"].endswith("(*http2Client).Write")
    assert plan.functions["grpc_server_write"].endswith("(*http2Server).Write")
    assert plan.offsets["stream_id"] == 0 and plan.offsets["flags"] & gp.O_STREAM_ID
    assert plan.degraded == []


@pytest.fixture(scope="module")
def observed(oldgrpc: Path):  # type: ignore[no-untyped-def]
    b = compile_grpc_module()
    p = subprocess.Popen(
        [str(oldgrpc)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert p.stdin is not None and p.stdout is not None
    assert json.loads(p.stdout.readline()) == {"ready": True}
    probes = gp.GrpcProbes(b, flow_threshold_ns=1_000_000)
    try:
        probes.attach(p.pid, str(oldgrpc))
        yield b, p
    finally:
        probes.close()
        p.kill()
        p.wait()
        b.cleanup()


def run(observed: Any, cmd: str) -> tuple[dict[str, Any], list[Any]]:
    b, p = observed
    drain(b, p.pid, settle_s=0)
    p.stdin.write(cmd + "\n")
    answer = json.loads(p.stdout.readline())
    return answer, gp.grpc_events(drain(b, p.pid), CLOCK)


@pytest.mark.ebpf
def test_v164_flow_waits_grow_with_the_reader_delay(observed: Any) -> None:
    totals = {}
    for delay in (10, 40):
        answer, events = run(observed, f"flow {delay} 256")
        assert "error" not in answer, answer
        waits = [e for e in events if e.attrs["type"] == "flow_control_wait"]
        assert waits and len({e.goid for e in waits}) == 1
        assert {e.attrs["stream_id"] for e in waits} == {1}
        assert {e.attrs["stream_window"] for e in waits} == {65535}
        totals[delay] = sum(e.duration_ns for e in waits) / 1e6
        assert totals[delay] >= 0.6 * answer["send_ms"], (totals, answer)
    assert totals[40] > 2.5 * totals[10], totals


@pytest.mark.ebpf
def test_v164_keepalive_goaway_and_pings(observed: Any) -> None:
    answer, events = run(observed, "keepalive 100")
    assert "too_many_pings" in answer.get("error", ""), answer
    got = [
        (e.attrs["side"], e.attrs["direction"], e.attrs.get("code"), e.attrs.get("debug_data"))
        for e in events
        if e.attrs["type"] == "goaway" and e.attrs.get("code") == 11
    ]
    assert ("client", "received", 11, "too_many_pings") in got
    assert ("server", "sent", 11, "too_many_pings") in got
    sent = [
        e
        for e in events
        if e.attrs["type"] == "ping" and e.attrs["side"] == "client" and not e.attrs["ack"]
    ]
    assert len(sent) >= 3
    # loopy names its transport (the goaway-handler closure) as in 1.85
    received = {e.attrs["conn"] for e in events if e.attrs["type"] == "goaway"}
    assert {e.attrs["conn"] for e in sent} & received


@pytest.mark.ebpf
def test_v164_unary_has_no_flow_control_wait(observed: Any) -> None:
    for _ in range(10):
        answer, events = run(observed, "unary")
        assert "error" not in answer
        assert not [e for e in events if e.attrs["type"] == "flow_control_wait"]


@pytest.mark.ebpf
def test_keepalive_timeout_close_is_named(observed: Any) -> None:
    """A peer that accepts and never answers: the client's keepalive ping is never acked
    and grpc-go closes the transport with its keepalive error."""
    _answer, events = run(observed, "kato 100")
    kato = [e for e in events if e.attrs["type"] == "keepalive_timeout"]
    assert [(e.attrs["side"], e.attrs["reason"]) for e in kato] == [
        ("client", "keepalive ping failed to receive ACK within timeout")
    ]
    assert kato[0].attrs["conn"].startswith("0x")


def client_diagnosis(answer: dict[str, Any], events: list[Any]) -> gd.GrpcDiagnosis:
    """grpc_diagnosis on a client span covering the fixture's RPC (the fixture has no
    OTel: otelgrpc v0.72 needs a newer grpc-go, so its span is the RPC's own window)."""
    diag = gd.diagnose(
        {"rpc.system": "grpc"},
        gd.SPAN_KIND_CLIENT,
        int(answer["start_ns"]),
        int(answer["end_ns"]),
        events,
    )
    assert diag is not None
    return diag


@pytest.mark.ebpf
def test_v164_diagnosis_of_a_flow_stall(observed: Any) -> None:
    answer, events = run(observed, "flow 40 512")
    diag = client_diagnosis(answer, events)
    assert diag.cause == "grpc_flow_control", diag
    assert diag.attributes["goblock.grpc.flow_control.wait.ms"] >= 0.5 * answer["send_ms"]
    assert "stream window 64 KiB" in (diag.diagnosis or "")


@pytest.mark.ebpf
def test_v164_diagnosis_of_a_too_many_pings_goaway(observed: Any) -> None:
    answer, events = run(observed, "keepalive 100")
    diag = client_diagnosis(answer, events)
    assert diag.cause == "grpc_keepalive", diag
    assert diag.attributes["goblock.grpc.goaway.code"] == 11
    assert "ENHANCE_YOUR_CALM too_many_pings" in (diag.diagnosis or ""), diag
    assert "MinTime 5m" in (diag.diagnosis or ""), diag


@pytest.mark.ebpf
def test_v164_diagnosis_of_a_unary_rpc_has_no_grpc_cause(observed: Any) -> None:
    answer, events = run(observed, "unary")
    assert client_diagnosis(answer, events).cause is None
