"""TCP trouble on a target's sockets: zero window, resets, state changes."""

from __future__ import annotations

import socket
import struct
import time

import pytest

pytestmark = pytest.mark.ebpf


def _listener(rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind(("127.0.0.1", 0))  # a free port: other suites run on this machine too
    s.listen(1)
    return s


def test_peer_that_stops_reading_gives_zero_window_on_the_right_tuple(receiver, run_gbfx):
    lst = _listener(rcvbuf=4096)
    port = lst.getsockname()[1]
    p = run_gbfx("tcpwrite", str(port))
    conn, _ = lst.accept()  # ... and never read
    try:
        local = p.value("local")
        sport = int(local.rsplit(":", 1)[1])
        sink = receiver.sink

        def zero():
            return [e for e in sink.of(p.pid, "tcp") if e.attrs["type"] == "zero_window"]

        assert sink.wait_for(lambda: bool(zero()), timeout=15), sink.of(p.pid, "tcp")
        e = zero()[0]
        assert (e.attrs["saddr"], e.attrs["sport"]) == ("127.0.0.1", sport)
        assert (e.attrs["daddr"], e.attrs["dport"]) == ("127.0.0.1", port)
        assert e.attrs["snd_wnd"] == 0 and e.attrs["side"] == "peer"
        states = [x for x in sink.of(p.pid, "tcp") if x.attrs["type"] == "state"]
        assert any(x.attrs["new_state"] == "SYN_SENT" and x.attrs["dport"] == port for x in states)
    finally:
        p.kill()
        conn.close()
        lst.close()


def test_refused_connect_gives_reset_received_in_syn_sent(receiver, run_gbfx):
    """A connect to a port nobody listens on: the peer's RST reaches a socket still in
    SYN_SENT, and the event says so (the refusal is told apart from a reset mid-stream)."""
    lst = _listener()
    port = lst.getsockname()[1]
    lst.close()  # the port is now closed: the kernel answers a SYN with RST
    p = run_gbfx("tcprefused", str(port))
    p.value("err")
    assert any("connection refused" in ln for ln in p.lines), p.lines
    sink = receiver.sink

    def resets():
        return [
            e
            for e in sink.of(p.pid, "tcp")
            if e.attrs["type"] == "reset_received" and e.attrs["dport"] == port
        ]

    assert sink.wait_for(lambda: bool(resets())), sink.of(p.pid, "tcp")
    assert resets()[0].attrs["state"] == "SYN_SENT"


def test_peer_reset_gives_reset_received_event(receiver, run_gbfx):
    lst = _listener()
    port = lst.getsockname()[1]
    p = run_gbfx("tcpreset", str(port))
    conn, _ = lst.accept()
    try:
        assert conn.recv(2) == b"hi"
        sport = int(p.value("local").rsplit(":", 1)[1])
        time.sleep(0.05)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # SO_LINGER 0: close sends RST
        p.value("err")
        assert any("connection reset" in ln for ln in p.lines), p.lines
        sink = receiver.sink

        def resets():
            return [e for e in sink.of(p.pid, "tcp") if e.attrs["type"] == "reset_received"]

        assert sink.wait_for(lambda: bool(resets())), sink.of(p.pid, "tcp")
        e = resets()[0]
        assert (e.attrs["sport"], e.attrs["dport"]) == (sport, port)
        assert e.attrs["daddr"] == "127.0.0.1"
        assert e.attrs["state"] == "ESTABLISHED"
        # the reset is also counted per peer in the metrics
        req = receiver.receiver.build_metrics().message()
        resets_m = [
            m
            for rm in req.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "goblock.tcp.resets"
        ]
        assert resets_m
        ports = {
            a.value.int_value
            for dp in resets_m[0].sum.data_points
            for a in dp.attributes
            if a.key == "network.peer.port"
        }
        assert port in ports
    finally:
        p.kill()
        lst.close()
