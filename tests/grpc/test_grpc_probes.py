"""grpc-go transport uprobes on the real demo service (examples/demo-service, grpc-go 1.85).

/grpc/flow: the sender's writes stall on the 64 KiB window on the handler's goroutine
and the stall grows with the reader's delay; /grpc/keepalive: the server's GOAWAY
ENHANCE_YOUR_CALM "too_many_pings" is seen sent and received, with the pings before it;
/grpc/unary: no flow-control wait (no false positive). The demo's own spans (real OTLP
from its SDK) are then diagnosed with the real events.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from grpc_harness import Demo, SpanSink, build_demo, compile_grpc_module, drain, hits_delta
from otel_goblock.processors.goblock import grpc_diagnosis as gd
from otel_goblock.receivers.ebpf.grpcprobes import GrpcProbes, grpc_events

from otel_goblock.clock import MonotonicClock
from otel_goblock.pdata import Event

pytestmark = pytest.mark.ebpf

CLOCK = MonotonicClock()


@pytest.fixture(scope="module")
def demo_binary() -> Path:
    return build_demo()


@pytest.fixture(scope="module")
def bpf():  # type: ignore[no-untyped-def]
    b = compile_grpc_module()
    yield b
    b.cleanup()


@pytest.fixture(scope="module")
def observed(bpf, demo_binary: Path):  # type: ignore[no-untyped-def]
    sink = SpanSink()
    demo = Demo(demo_binary, sink)
    probes = GrpcProbes(bpf, flow_threshold_ns=1_000_000)
    try:
        probes.attach(demo.pid, str(demo_binary))
        yield bpf, probes, demo, sink
    finally:
        probes.close()
        demo.stop()
        sink.stop()


def run(observed: Any, path: str) -> tuple[dict[str, Any], list[Event], dict[str, int]]:
    """One request; its answer, the grpc Events it caused, the probe hits it cost."""
    b, probes, demo, _sink = observed
    drain(b, demo.pid, settle_s=0)
    before = probes.hits()
    answer = demo.get(path)
    events = grpc_events(drain(b, demo.pid), CLOCK)
    return answer, events, hits_delta(before, probes.hits())


def of(events: list[Event], typ: str, **match: Any) -> list[Event]:
    return [
        e
        for e in events
        if e.attrs.get("type") == typ and all(e.attrs.get(k) == v for k, v in match.items())
    ]


def test_flow_waits_are_on_the_sending_goroutine_and_grow_with_the_reader_delay(
    observed: Any,
) -> None:
    totals = {}
    for delay in (10, 40):
        answer, events, _ = run(observed, f"/grpc/flow?ms={delay}&kib=256")
        waits = of(events, "flow_control_wait", side="client")
        assert waits, f"no flow-control wait at ms={delay}: {events}"
        # one stream, one sending goroutine; the frames arrive on other goroutines
        assert len({e.goid for e in waits}) == 1
        sender = waits[0].goid
        readers = {e.goid for e in of(events, "window_update", side="client")}
        assert readers and sender not in readers
        assert {e.attrs["stream_id"] for e in waits} == {1}
        assert {e.attrs["stream_window"] for e in waits} == {65535}
        assert all(e.attrs["bytes"] == 16 * 1024 + 9 for e in waits)  # 16 KiB message
        # each stalled send waits about one reader delay; together most of send_ms
        longest = max(e.duration_ns for e in waits) / 1e6
        assert delay * 0.8 <= longest <= delay * 3, (delay, longest)
        total = sum(e.duration_ns for e in waits) / 1e6
        assert total <= answer["send_ms"] + 1
        assert total >= 0.6 * answer["send_ms"], (total, answer["send_ms"])
        totals[delay] = total
    assert totals[40] > 2.5 * totals[10], totals


def test_flow_window_updates_name_stream_and_connection(observed: Any) -> None:
    _, events, _ = run(observed, "/grpc/flow?ms=5&kib=256")
    wus = of(events, "window_update", side="client")
    conns = {e.attrs["conn"] for e in of(events, "flow_control_wait", side="client")}
    assert len(conns) == 1
    mine = [e for e in wus if e.attrs["conn"] in conns]
    assert {e.attrs["stream_id"] for e in mine} == {0, 1}  # connection and stream windows
    assert all(e.attrs["increment"] > 0 for e in mine)


def test_keepalive_goaway_too_many_pings_is_seen_on_both_sides(observed: Any) -> None:
    answer, events, _ = run(observed, "/grpc/keepalive?ms=100")
    assert "too_many_pings" in answer.get("grpc_error", ""), answer
    received = of(events, "goaway", side="client", direction="received")
    sent = of(events, "goaway", side="server", direction="sent")
    assert [(e.attrs["code"], e.attrs["code_name"], e.attrs["debug_data"]) for e in received] == [
        (11, "ENHANCE_YOUR_CALM", "too_many_pings")
    ]
    assert any(e.attrs["code"] == 11 and e.attrs["debug_data"] == "too_many_pings" for e in sent)
    conn = received[0].attrs["conn"]
    pings = of(events, "ping", side="client", direction="sent", ack=False, conn=conn)
    assert len(pings) >= 3 and {e.attrs["purpose"] for e in pings} == {"keepalive"}
    # the server acked them and read its own enforcement policy; the client its Time
    assert of(events, "ping", side="server", direction="sent", ack=True)
    server_received = of(events, "ping", side="server", direction="received")
    assert {e.attrs.get("enforcement_min_time_ms") for e in server_received} == {300_000}
    acks = of(events, "ping", side="client", direction="received", ack=True, conn=conn)
    assert acks and {e.attrs["keepalive_time_ms"] for e in acks} == {100}
    assert all(e.start_ns < received[0].start_ns for e in pings[:3])


def test_unary_has_no_flow_control_wait(observed: Any) -> None:
    per_rpc: list[dict[str, int]] = []
    for _ in range(20):
        _, events, hits = run(observed, "/grpc/unary")
        assert not of(events, "flow_control_wait"), events
        assert not of(events, "goaway")
        per_rpc.append(hits)
    # cost budget: a unary RPC hits write twice (client request, server response) and one
    # RET each. The counts here also include the demo's own span exporter (otlptracegrpc
    # is grpc-go in the same process): ~1 Export per request, with its frames.
    writes = sum(h["write"] for h in per_rpc) / len(per_rpc)
    assert writes <= 4, per_rpc
    assert sum(sum(h.values()) for h in per_rpc) / len(per_rpc) <= 12, per_rpc


def _span_diagnosis(
    observed: Any, answer: dict[str, Any], events: list[Event], name: str, kind: int
) -> Any:
    _b, _p, _demo, sink = observed
    spans = [s for s in sink.find(answer["trace_id"], name) if s.kind == kind]
    assert spans, f"no span {name!r} of kind {kind} in trace {answer['trace_id']}"
    span = spans[0]
    attrs, kind, start, end = gd.span_inputs(span)
    diag = gd.diagnose(attrs, kind, start, end, events)
    assert diag is not None, attrs
    gd.apply(span, diag)
    return span, diag


def test_real_flow_client_span_is_diagnosed_as_flow_control(observed: Any) -> None:
    # 512 KiB: 24 of 32 sends stall; waiting for the reply afterwards is the smaller part
    answer, events, _ = run(observed, "/grpc/flow?ms=20&kib=512")
    _span, diag = _span_diagnosis(observed, answer, events, "Upload", gd.SPAN_KIND_CLIENT)
    assert diag.cause == "grpc_flow_control", diag
    assert diag.attributes["goblock.grpc.flow_control.wait.ms"] >= 0.6 * answer["send_ms"]
    assert diag.attributes["goblock.grpc.window_updates"] > 0
    assert "waiting for the HTTP/2 flow-control window" in diag.diagnosis
    assert "stream window 64 KiB" in diag.diagnosis


def test_real_keepalive_client_span_carries_the_goaway(observed: Any) -> None:
    answer, events, _ = run(observed, "/grpc/keepalive?ms=100")
    span, diag = _span_diagnosis(observed, answer, events, "Hang", gd.SPAN_KIND_CLIENT)
    assert diag.cause == "grpc_keepalive"
    assert diag.attributes["goblock.grpc.goaway.code"] == 11
    assert diag.attributes["goblock.grpc.goaway.debug_data"] == "too_many_pings"
    assert diag.attributes["goblock.grpc.pings.sent"] >= 3
    assert [e.name for e in span.events if e.name == "http2.goaway"] == ["http2.goaway"]
    assert "ENHANCE_YOUR_CALM too_many_pings" in diag.diagnosis
    assert "client keepalive time 100 ms" in diag.diagnosis
    assert "MinTime 5m" in diag.diagnosis
    # the server's span of the same RPC: it sent the GOAWAY, after the pings it received
    _span, sdiag = _span_diagnosis(observed, answer, events, "Hang", gd.SPAN_KIND_SERVER)
    assert sdiag.cause == "grpc_keepalive", sdiag
    assert sdiag.attributes["goblock.grpc.goaway.code"] == 11
    assert sdiag.diagnosis.startswith("server sent GOAWAY ENHANCE_YOUR_CALM too_many_pings")
    assert "below the server's enforcement MinTime 5m" in sdiag.diagnosis


def test_real_unary_spans_get_no_grpc_cause(observed: Any) -> None:
    answer, events, _ = run(observed, "/grpc/unary")
    for kind in (gd.SPAN_KIND_CLIENT, gd.SPAN_KIND_SERVER):
        _span, diag = _span_diagnosis(observed, answer, events, "Unary", kind)
        assert diag.cause is None and "goblock.grpc.flow_control.wait.ms" not in diag.attributes


def test_stripped_binary_still_sees_stalls_and_says_goaway_is_lost(
    bpf, demo_binary: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stripped = demo_binary.parent / "demo-service-stripped"
    demo = Demo(stripped, None)
    probes = GrpcProbes(bpf, flow_threshold_ns=1_000_000)
    try:
        with caplog.at_level(logging.WARNING, logger="otel_goblock.receiver.ebpf.grpc"):
            plan = probes.attach(demo.pid, str(stripped))
        assert any("GOAWAY code and debug data" in d for d in plan.degraded)
        assert sum("degraded grpc probes" in r.getMessage() for r in caplog.records) == 1
        drain(bpf, demo.pid, settle_s=0)
        demo.get("/grpc/flow?ms=10&kib=256")
        demo.get("/grpc/keepalive?ms=100")
        events = grpc_events(drain(bpf, demo.pid), CLOCK)
        waits = of(events, "flow_control_wait", side="client")
        assert waits and max(e.duration_ns for e in waits) >= 8e6
        goaways = of(events, "goaway", side="client", direction="received")
        assert goaways and all("code" not in e.attrs for e in goaways)
    finally:
        probes.close()
        demo.stop()


def test_go127_build_sees_stalls_and_goaway(bpf, demo_binary: Path) -> None:
    """Go 1.27 (newer than every table; pads call sites with a nop): same events."""
    go127 = demo_binary.parent / "go1.27" / "demo-service"
    if not go127.exists():
        pytest.skip("build/go1.27/demo-service not built (scripts/build_demo.sh --go127)")
    demo = Demo(go127, None)
    probes = GrpcProbes(bpf, flow_threshold_ns=1_000_000)
    try:
        plan = probes.attach(demo.pid, str(go127))
        assert "grpc_write_ret" not in plan.functions  # the wakeup point was found
        drain(bpf, demo.pid, settle_s=0)
        answer = demo.get("/grpc/flow?ms=20&kib=256")
        demo.get("/grpc/keepalive?ms=100")
        events = grpc_events(drain(bpf, demo.pid), CLOCK)
        waits = of(events, "flow_control_wait", side="client")
        total = sum(e.duration_ns for e in waits) / 1e6
        assert total >= 0.6 * answer["send_ms"], (total, answer)
        assert of(events, "goaway", side="client", direction="received", code=11)
    finally:
        probes.close()
        demo.stop()
