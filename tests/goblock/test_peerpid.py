"""The OTLP peer → pid resolver, against a real TCP connection of this process."""

from __future__ import annotations

import asyncio
import os
import socket

from otel_goblock.processors.goblock.peerpid import PeerPidResolver, parse_peer, socket_inode

from otel_goblock.pdata import RequestInfo, Traces

from .helpers import app_span, attrs_of, ev, make, marker, request


def _connected_pair(family: int = socket.AF_INET, host: str = "127.0.0.1"):
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.bind((host, 0))  # a free port, never a well-known one
    srv.listen(1)
    cli = socket.create_connection(srv.getsockname()[:2])
    conn, _ = srv.accept()
    return srv, cli, conn


def test_the_client_end_of_a_local_connection_resolves_to_its_process() -> None:
    srv, cli, conn = _connected_pair()
    try:
        host, port = cli.getsockname()[:2]  # what the server sees as the peer
        resolver = PeerPidResolver()
        assert resolver.resolve(f"{host}:{port}") == os.getpid()
        assert resolver.resolve(f"ipv4:{host}:{port}") == os.getpid()  # gRPC's peer form
        assert resolver.cached(f"{host}:{port}") == (True, os.getpid())
    finally:
        for s in (cli, conn, srv):
            s.close()


def test_ipv6_loopback_resolves() -> None:
    if not socket.has_ipv6:
        return
    try:
        srv, cli, conn = _connected_pair(socket.AF_INET6, "::1")
    except OSError:
        return  # no IPv6 loopback on this host: nothing to resolve
    try:
        port = cli.getsockname()[1]
        assert PeerPidResolver().resolve(f"[::1]:{port}") == os.getpid()
    finally:
        for s in (cli, conn, srv):
            s.close()


def test_remote_or_malformed_peers_resolve_to_nothing() -> None:
    assert parse_peer("not an address") is None
    assert socket_inode("192.0.2.1:1") is None  # TEST-NET-1: never local
    assert PeerPidResolver().resolve("garbage") is None


async def test_spans_without_process_pid_join_through_the_peer() -> None:
    srv, cli, conn = _connected_pair()
    try:
        host, port = cli.getsockname()[:2]
        pid = os.getpid()
        proc, sink, _ = make()
        await proc.start(None)  # type: ignore[arg-type]
        await proc.consume_traces(
            Traces(
                raw=b"",
                span_count=0,
                events=[
                    ev("park", 10, 90, goid=4, pid=pid, reason="sleep"),
                    marker(1, 100, 4, pid=pid),
                ],
            )
        )
        data = Traces(
            raw=request([(1, 0, 100)], pid=None).SerializeToString(),
            info=RequestInfo(transport="grpc", peer=f"{host}:{port}"),
        )
        await proc.consume_traces(data)
        await proc.shutdown()
        assert attrs_of(app_span(sink, 1))["goblock.cause"] == "sleep"
    finally:
        for s in (cli, conn, srv):
            s.close()
    await asyncio.sleep(0)
