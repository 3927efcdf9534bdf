"""processors/goblock/grpc_diagnosis.py on protobuf spans and Event lists shaped like the
receiver's (see tests/grpc/test_grpc_probes.py for the same on the demo's real ones)."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otel_goblock.processors.goblock import grpc_diagnosis as gd

from otel_goblock.pdata import Event

MS = 1_000_000
T0 = 1_790_000_000_000_000_000
APP, READER, LOOPY = 42, 43, 44
CONN, OTHER = "0xc000123000", "0xc000999000"


def span(kind: int = Span.SPAN_KIND_CLIENT, dur_ms: int = 500, **attrs: Any) -> Span:
    s = Span(
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        name="goblock.demo.Demo/Upload",
        kind=kind,
        start_time_unix_nano=T0,
        end_time_unix_nano=T0 + dur_ms * MS,
    )
    attrs = attrs or {"rpc.system": "grpc", "rpc.service": "goblock.demo.Demo"}
    s.attributes.extend(KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items())
    return Span.FromString(s.SerializeToString())  # a real wire round trip


def ev(typ: str, at_ms: float, dur_ms: float = 0, goid: int = READER, **attrs: Any) -> Event:
    start = T0 + int(at_ms * MS)
    a = {"type": typ, "conn": CONN, "side": "client", "direction": "received", **attrs}
    return Event("grpc", 1234, 99, goid, start, start + int(dur_ms * MS), a, source="ebpf")


def wait(at_ms: float, dur_ms: float, **kw: Any) -> Event:
    kw.setdefault("direction", "sent")
    return ev(
        "flow_control_wait",
        at_ms,
        dur_ms,
        goid=APP,
        stream_id=1,
        bytes=16393,
        stream_window=65535,
        **kw,
    )


def diagnose(s: Span, events: list[Event], **kw: Any) -> gd.GrpcDiagnosis | None:
    attrs, kind, start, end = gd.span_inputs(s)
    return gd.diagnose(attrs, kind, start, end, events, **kw)


def flow_events() -> list[Event]:
    out = []
    for i in range(7):  # 7 stalls of 50 ms = 350 ms of a 500 ms span
        out.append(wait(20 + i * 60, 50))
        out.append(ev("window_update", 70 + i * 60, stream_id=1, increment=16393))
        out.append(ev("window_update", 70 + i * 60, stream_id=0, increment=16393))
    return out


def test_flow_control_dominant_gives_cause_numbers_and_sentence() -> None:
    d = diagnose(span(), flow_events(), goroutines={APP})
    assert d is not None
    assert d.cause == "grpc_flow_control"
    assert d.attributes == {
        "goblock.grpc.flow_control.wait.ms": 350.0,
        "goblock.grpc.window_updates": 14,
    }
    assert d.diagnosis == (
        "stream send stalled 350 ms waiting for the HTTP/2 flow-control window: the peer "
        "reads slowly (7 sends waited, stream window 64 KiB, 14 WINDOW_UPDATEs received)"
    )
    assert d.events == []


def test_newer_otelgrpc_attribute_name_is_recognized() -> None:
    s = span(**{"rpc.system.name": "grpc", "rpc.method": "Upload"})
    d = diagnose(s, flow_events(), goroutines={APP})
    assert d is not None and d.cause == "grpc_flow_control"


def test_not_a_grpc_span_is_left_alone() -> None:
    assert diagnose(span(**{"http.request.method": "GET"}), flow_events()) is None
    assert diagnose(span(**{"rpc.system": "connect_rpc"}), flow_events()) is None


def test_waits_of_other_goroutines_do_not_count() -> None:
    d = diagnose(span(), flow_events(), goroutines={APP + 100})
    assert d is not None and d.cause is None
    assert "goblock.grpc.flow_control.wait.ms" not in d.attributes


def test_a_short_wait_is_reported_but_not_the_cause() -> None:
    d = diagnose(span(), [wait(10, 30)], goroutines={APP})
    assert d is not None
    assert d.attributes["goblock.grpc.flow_control.wait.ms"] == 30.0
    assert d.cause is None and d.diagnosis is None


def test_dominance_against_the_processors_breakdown() -> None:
    events = [wait(0, 200)]  # 40 % of the span
    d = diagnose(span(), events, goroutines={APP}, breakdown_ms={"park.select": 150.0})
    assert d is not None and d.cause == "grpc_flow_control"
    d = diagnose(span(), events, goroutines={APP}, breakdown_ms={"park.select": 250.0})
    assert d is not None and d.cause is None


def test_waits_are_clipped_to_the_span_and_overlaps_merged() -> None:
    # clipped to 0..50, merged with 40..60 into 0..60, plus 490..500 clipped: 70 ms
    events = [wait(-100, 150), wait(40, 20), wait(490, 100)]
    d = diagnose(span(), events, goroutines={APP})
    assert d is not None
    assert d.attributes["goblock.grpc.flow_control.wait.ms"] == 70.0


def test_server_span_ignores_the_client_side_of_the_same_process() -> None:
    d = diagnose(span(Span.SPAN_KIND_SERVER), flow_events(), goroutines={APP})
    assert d is not None and d.attributes == {} and d.cause is None


def keepalive_events(with_server: bool = True) -> list[Event]:
    out = []
    for i in range(5):  # the client pings every 200 ms; the server acks
        out.append(
            ev("ping", 10 + i * 200, goid=LOOPY, direction="sent", ack=False, purpose="keepalive")
        )
        out.append(ev("ping", 11 + i * 200, ack=True, purpose="keepalive", keepalive_time_ms=200))
        if with_server:
            out.append(
                ev(
                    "ping",
                    10.5 + i * 200,
                    conn=OTHER,
                    side="server",
                    ack=False,
                    enforcement_min_time_ms=300_000,
                )
            )
    out.append(
        ev(
            "goaway",
            812,
            code=11,
            code_name="ENHANCE_YOUR_CALM",
            debug_data="too_many_pings",
            last_stream_id=1,
        )
    )
    out.append(ev("transport_close", 1812, reason="error reading from server: EOF"))
    out.append(
        ev(
            "goaway",
            1812.5,
            goid=LOOPY,
            direction="sent",
            code=0,
            code_name="NO_ERROR",
            debug_data="client transport shutdown",
        )
    )
    return out


def test_keepalive_goaway_that_ended_the_rpc() -> None:
    s = span(dur_ms=1813)
    d = diagnose(s, keepalive_events(), goroutines={APP})
    assert d is not None
    assert d.cause == "grpc_keepalive"
    assert d.attributes == {
        "goblock.grpc.pings.sent": 5,
        "goblock.grpc.goaway.code": 11,
        "goblock.grpc.goaway.debug_data": "too_many_pings",
    }
    assert d.diagnosis == (
        "server sent GOAWAY ENHANCE_YOUR_CALM too_many_pings 812 ms into the RPC: client "
        "keepalive time 200 ms (pings seen every ~200 ms, 5 in the RPC) is below the "
        "server's enforcement MinTime 5m"
    )
    # one span event: the server's GOAWAY, not the client's own shutdown GOAWAY
    assert [(e.name, e.time_ns - T0) for e in d.events] == [("http2.goaway", 812 * MS)]
    assert d.events[0].attributes["http2.goaway.error_name"] == "ENHANCE_YOUR_CALM"
    gd.apply(s, d)
    s = Span.FromString(s.SerializeToString())
    got = {kv.key: kv.value for kv in s.attributes}
    assert got["goblock.cause"].string_value == "grpc_keepalive"
    assert got["goblock.grpc.goaway.code"].int_value == 11
    assert got["rpc.system"].string_value == "grpc"
    (event,) = s.events
    assert event.name == "http2.goaway"
    assert {kv.key: kv.value for kv in event.attributes}[
        "http2.goaway.debug_data"
    ].string_value == "too_many_pings"


def test_keepalive_without_the_server_in_view_says_what_is_unknown() -> None:
    d = diagnose(span(dur_ms=1813), keepalive_events(with_server=False), goroutines={APP})
    assert d is not None and d.diagnosis is not None
    assert d.diagnosis.endswith(
        "is below the server's enforcement MinTime (not visible from this process; "
        "grpc-go's default is 5m)"
    )


def test_server_span_of_the_same_rpc_names_the_pings_it_received() -> None:
    events = [
        ev(
            "ping",
            10 + i * 200,
            conn=OTHER,
            side="server",
            ack=False,
            enforcement_min_time_ms=300_000,
        )
        for i in range(4)
    ]
    events.append(
        ev(
            "goaway",
            611,
            conn=OTHER,
            side="server",
            direction="sent",
            goid=LOOPY,
            code=11,
            code_name="ENHANCE_YOUR_CALM",
            debug_data="too_many_pings",
        )
    )
    d = diagnose(span(Span.SPAN_KIND_SERVER, dur_ms=1612), events, goroutines={APP})
    assert d is not None and d.cause == "grpc_keepalive"
    assert d.diagnosis == (
        "server sent GOAWAY ENHANCE_YOUR_CALM too_many_pings 611 ms into the RPC: client "
        "pinged every ~200 ms (4 pings in the RPC) is below the server's enforcement MinTime 5m"
    )


def test_goaway_long_before_the_end_is_an_event_not_the_cause() -> None:
    events = [ev("goaway", 100, code=11, code_name="ENHANCE_YOUR_CALM", debug_data="x")]
    d = diagnose(span(dur_ms=5000), events, goroutines={APP})
    assert d is not None
    assert d.cause is None and [e.name for e in d.events] == ["http2.goaway"]


def test_graceful_goaway_does_not_tear_down() -> None:
    events = [ev("goaway", 490, code=0, code_name="NO_ERROR", debug_data="max_age")]
    d = diagnose(span(), events, goroutines={APP})
    assert d is not None and d.cause is None
    assert d.attributes["goblock.grpc.goaway.code"] == 0


def test_keepalive_timeout_close() -> None:
    events = [
        ev("keepalive_timeout", 480, reason="keepalive ping failed to receive ACK within timeout")
    ]
    d = diagnose(span(), events, goroutines={APP})
    assert d is not None and d.cause == "grpc_keepalive"
    assert [e.name for e in d.events] == ["grpc.keepalive.timeout"]
    assert d.diagnosis is not None
    assert d.diagnosis.startswith("connection closed 480 ms into the RPC by a keepalive timeout")


def test_unary_span_gets_nothing() -> None:
    d = diagnose(span(dur_ms=2), [], goroutines={APP})
    assert d is not None
    assert (d.attributes, d.events, d.cause, d.diagnosis) == ({}, [], None, None)


def test_known_connection_filters_other_connections_frames() -> None:
    events = [*flow_events(), ev("window_update", 100, conn=OTHER, stream_id=5, increment=9)]
    d = diagnose(span(), events, goroutines={APP})
    assert d is not None and d.attributes["goblock.grpc.window_updates"] == 14


def test_durations_read_like_go_settings() -> None:
    assert [gd.fmt_duration(x) for x in (0.5, 200, 1000, 1500, 300_000, 7_200_000)] == [
        "0.5 ms",
        "200 ms",
        "1s",
        "1.5s",
        "5m",
        "2h",
    ]
    assert [gd.fmt_bytes(x) for x in (512, 65535, 65536, 4 << 20)] == [
        "512 B",
        "64 KiB",
        "64 KiB",
        "4 MiB",
    ]
