"""The goblock processor writes grpc_diagnosis's answer into gRPC spans (issue 7): the
flow-control wait, WINDOW_UPDATE and PING counts, the GOAWAY code and debug data, the
`http2.goaway` / `grpc.keepalive.timeout` events, and the cause when gRPC explains the
span. Events are shaped like the ebpf receiver's grpc events (tests/grpc/test_grpc_probes
checks those on the real demo)."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from .helpers import app_span, attrs_of, ev, make, marker, request, run

APP, READER = 7, 8
CONN = "0xc000123000"


def grpc_ev(at_ms: float, end_ms: float | None = None, goid: int = READER, **a: Any) -> Any:
    a.setdefault("conn", CONN)
    a.setdefault("side", "client")
    a.setdefault("direction", "received")
    return ev("grpc", at_ms, end_ms, goid=goid, **a)


def grpc_request(kind: int = Span.SPAN_KIND_CLIENT, key: str = "rpc.system.name") -> Any:
    req = request([(1, 0, 500)], attrs={1: {key: "grpc"}})
    req.resource_spans[0].scope_spans[0].spans[0].kind = kind
    return req


async def test_flow_control_stall_on_a_grpc_client_span() -> None:
    proc, sink, _ = make()
    events = [
        grpc_ev(
            20 + 100 * i,
            20 + 100 * i + 80,
            goid=APP,
            type="flow_control_wait",
            direction="sent",
            stream_id=1,
            stream_window=65535,
        )
        for i in range(4)
    ]
    events += [grpc_ev(100 * i + 99, type="window_update", stream_id=1) for i in range(4)]
    events += [marker(1, 500, APP)]
    await run(proc, events, grpc_request())
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.grpc.flow_control.wait.ms"] == 320.0
    assert a["goblock.grpc.window_updates"] == 4
    assert a["goblock.cause"] == "grpc_flow_control"
    assert a["goblock.diagnosis"].startswith(
        "stream send stalled 320 ms waiting for the HTTP/2 flow-control window: "
        "the peer reads slowly (4 sends waited, stream window 64 KiB"
    ), a["goblock.diagnosis"]
    # the frames are counted, not listed as events
    assert not app_span(sink, 1).events


async def test_too_many_pings_goaway_on_the_failed_rpc() -> None:
    proc, sink, _ = make()
    events = [ev("park", 5, 495, goid=APP, reason="select")]
    events += [
        grpc_ev(50 * i, type="ping", direction="sent", keepalive_time_ms=50) for i in range(1, 9)
    ]
    events += [
        grpc_ev(
            10, side="server", type="ping", direction="received", enforcement_min_time_ms=300000
        ),
        grpc_ev(
            450,
            type="goaway",
            code=11,
            code_name="ENHANCE_YOUR_CALM",
            debug_data="too_many_pings",
            last_stream_id=1,
        ),
        marker(1, 500, APP),
    ]
    await run(proc, events, grpc_request())
    span = app_span(sink, 1)
    a = attrs_of(span)
    assert a["goblock.cause"] == "grpc_keepalive"
    assert a["goblock.grpc.goaway.code"] == 11
    assert a["goblock.grpc.goaway.debug_data"] == "too_many_pings"
    assert a["goblock.grpc.pings.sent"] == 8
    assert (
        "server sent GOAWAY ENHANCE_YOUR_CALM too_many_pings 450 ms into the RPC: "
        "client keepalive time 50 ms" in a["goblock.diagnosis"]
    ), a["goblock.diagnosis"]
    assert "is below the server's enforcement MinTime 5m" in a["goblock.diagnosis"]
    [goaway] = [e for e in span.events if e.name == "http2.goaway"]
    ea = {kv.key: kv.value for kv in goaway.attributes}
    assert ea["http2.goaway.error_code"].int_value == 11
    assert ea["http2.goaway.error_name"].string_value == "ENHANCE_YOUR_CALM"
    assert ea["http2.goaway.debug_data"].string_value == "too_many_pings"


async def test_keepalive_timeout_names_the_close() -> None:
    proc, sink, _ = make()
    events = [
        ev("park", 5, 495, goid=APP, reason="select"),
        grpc_ev(480, type="keepalive_timeout", reason="keepalive ping not acknowledged"),
        marker(1, 500, APP),
    ]
    await run(proc, events, grpc_request(key="rpc.system"))  # older otelgrpc's key
    span = app_span(sink, 1)
    a = attrs_of(span)
    assert a["goblock.cause"] == "grpc_keepalive"
    assert "keepalive timeout" in a["goblock.diagnosis"]
    assert [e.name for e in span.events] == ["grpc.keepalive.timeout"]


async def test_a_unary_rpc_with_frames_but_no_stall_gets_no_grpc_cause() -> None:
    proc, sink, _ = make()
    events = [
        ev("park", 5, 495, goid=APP, reason="select"),
        grpc_ev(100, type="window_update", stream_id=0),
        grpc_ev(200, type="ping", direction="received", ack=True),
        # a graceful NO_ERROR GOAWAY the client sends when it closes its connection
        grpc_ev(499, type="goaway", direction="sent", code=0, code_name="NO_ERROR"),
        marker(1, 500, APP),
    ]
    await run(proc, events, grpc_request())
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.cause"] not in ("grpc_flow_control", "grpc_keepalive"), a
    assert a["goblock.grpc.window_updates"] == 1
    assert "goblock.grpc.flow_control.wait.ms" not in a
    assert "goblock.grpc.goaway.code" not in a


async def test_server_side_frames_do_not_explain_a_client_span() -> None:
    proc, sink, _ = make()
    events = [
        ev("park", 5, 495, goid=APP, reason="select"),
        grpc_ev(
            450,
            side="server",
            direction="sent",
            type="goaway",
            code=11,
            debug_data="too_many_pings",
        ),
        marker(1, 500, APP),
    ]
    await run(proc, events, grpc_request(kind=Span.SPAN_KIND_CLIENT))
    a = attrs_of(app_span(sink, 1))
    assert a["goblock.cause"] != "grpc_keepalive", a


def tcp_ev(at_ms: float, typ: str, **a: Any) -> Any:
    return ev(
        "tcp", at_ms, pid=0, type=typ, saddr="127.0.0.1", sport=40000, daddr="127.0.0.1",
        dport=9090, **a,
    )  # fmt: skip


async def test_grpc_span_gets_the_tcp_context_of_its_connection() -> None:
    """The RPC's goroutine never touches the socket: the connection is found through the
    transport goroutine that reported its frames (its EAGAIN reads name the socket)."""
    proc, sink, _ = make()
    socket = "tcp 127.0.0.1:40000->127.0.0.1:9090"
    other = "tcp 127.0.0.1:41111->127.0.0.1:4317"  # another connection's reader
    events = [
        ev("syscall", -2000, -2000, goid=READER, tid=3, name="read", fd_target=socket),
        ev("syscall", 50, 50, goid=READER + 5, tid=4, name="read", fd_target=other),
        grpc_ev(60, goid=READER + 5, conn="0xc000999000", type="window_update"),
        tcp_ev(-500, "probe", srtt_us=850, snd_wnd=65535, rcv_wnd=131072, snd_cwnd=10),
        grpc_ev(20, 420, goid=APP, type="flow_control_wait", direction="sent", stream_window=65535),
        grpc_ev(400, type="window_update", stream_id=1),
        tcp_ev(300, "retransmit"),
        tcp_ev(600, "retransmit"),  # after the span
        marker(1, 500, APP),
    ]
    await run(proc, events, grpc_request())
    span = app_span(sink, 1)
    a = attrs_of(span)
    assert a["goblock.tcp.connection"] == socket
    assert (a["goblock.tcp.srtt_us"], a["goblock.tcp.snd_wnd"], a["goblock.tcp.rcv_wnd"]) == (
        850,
        65535,
        131072,
    )
    assert a["goblock.tcp.retransmits"] == 1
    assert [e.name for e in span.events] == ["tcp retransmit"]
