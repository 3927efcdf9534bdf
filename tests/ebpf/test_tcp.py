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


def _states(sink, pid: int, dport: int) -> list[tuple[str, str]]:
    """(old, new) of the state-change events of `pid`'s sockets to `dport`."""
    return [
        (e.attrs["old_state"], e.attrs["new_state"])
        for e in sink.of(pid, "tcp")
        if e.attrs["type"] == "state" and e.attrs["dport"] == dport
    ]


def _state_counts(receiver) -> dict[tuple[str, str], int]:
    """goblock.tcp.state_changes as (old, new) → count, read from the kernel now."""
    req = receiver.receiver.build_metrics().message()
    out = {}
    for rm in req.resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                if m.name != "goblock.tcp.state_changes":
                    continue
                for dp in m.sum.data_points:
                    a = {kv.key: kv.value.string_value for kv in dp.attributes}
                    out[(a["old_state"], a["new_state"])] = dp.as_int
    return out


def test_normal_connection_is_counted_not_emitted(receiver, run_gbfx):
    """A short connection that closes normally: its state changes (connect, the peer's
    FIN, our close) reach the goblock.tcp.state_changes metric, none leaves as an event.
    A refused connect afterwards is the unusual one, and its event is emitted; it went
    through the same ring after the normal connection's, so once it is here any event of
    the normal one would be too."""
    ordinary = [
        ("CLOSE", "SYN_SENT"),
        ("SYN_SENT", "ESTABLISHED"),
        ("ESTABLISHED", "CLOSE_WAIT"),
        ("CLOSE_WAIT", "LAST_ACK"),
        ("LAST_ACK", "CLOSE"),
    ]
    before = _state_counts(receiver)
    lst = _listener()
    port = lst.getsockname()[1]
    p = run_gbfx("tcpreset", str(port))  # dials, writes "hi", reads until EOF, exits
    conn, _ = lst.accept()
    try:
        assert conn.recv(2) == b"hi"
        conn.close()  # a normal close: FIN; gbfx reads EOF and exits (closing its end)
        p.value("err")
        sink = receiver.sink

        def counted() -> bool:
            now = _state_counts(receiver)
            return all(now.get(k, 0) > before.get(k, 0) for k in ordinary)

        assert sink.wait_for(counted, timeout=10), (before, _state_counts(receiver))
    finally:
        lst.close()
    closed = _listener()
    refused_port = closed.getsockname()[1]
    closed.close()
    q = run_gbfx("tcprefused", str(refused_port))
    q.value("err")
    assert receiver.sink.wait_for(lambda: bool(_states(receiver.sink, q.pid, refused_port)))
    assert _states(receiver.sink, q.pid, refused_port) == [("SYN_SENT", "CLOSE")]
    assert _states(receiver.sink, p.pid, port) == []


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
        # its connect is an ordinary state change: counted in the kernel, not emitted
        states = [x for x in sink.of(p.pid, "tcp") if x.attrs["type"] == "state"]
        assert not [x for x in states if x.attrs["dport"] == port], states
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
    # the failed connect is an unusual state change: emitted
    assert sink.wait_for(lambda: bool(_states(sink, p.pid, port))), sink.of(p.pid, "tcp")
    assert ("SYN_SENT", "CLOSE") in _states(sink, p.pid, port)


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
        # the reset aborted the connection: its ESTABLISHED → CLOSE is emitted
        assert sink.wait_for(lambda: ("ESTABLISHED", "CLOSE") in _states(sink, p.pid, port))
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
