"""Start/shutdown, which servers run, bind errors, metadata and custom paths."""

from __future__ import annotations

import http.client
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import psutil
import pytest
import requests

from .test_bad_input import GOOD, PB, TRACES, grpc_call


def test_only_the_named_protocol_listens(start_receiver: Any) -> None:
    r = start_receiver({"protocols": {"grpc": {"endpoint": "127.0.0.1:0"}}})
    assert r.receiver.http is None and r.receiver.http_address == ""
    assert grpc_call(r.grpc_target, GOOD).code() == grpc.StatusCode.OK
    r2 = start_receiver({"protocols": {"http": {"endpoint": "127.0.0.1:0"}}})
    assert r2.receiver.grpc is None and r2.receiver.grpc_address == ""
    assert requests.post(r2.http_url(), data=GOOD, headers=PB, timeout=5).status_code == 200


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_port_in_use_fails_the_start_with_the_endpoint(start_receiver: Any, protocol: str) -> None:
    first = start_receiver({"protocols": {protocol: {"endpoint": "127.0.0.1:0"}}})
    taken = first.receiver.grpc_address if protocol == "grpc" else first.receiver.http_address
    with pytest.raises(RuntimeError, match=f"otlp {protocol}: cannot listen on {taken}"):
        start_receiver({"protocols": {protocol: {"endpoint": taken}}})


def test_http_failing_to_start_releases_the_grpc_port(start_receiver: Any) -> None:
    first = start_receiver({"protocols": {"http": {"endpoint": "127.0.0.1:0"}}})
    with pytest.raises(RuntimeError):
        start_receiver(
            {
                "protocols": {
                    "grpc": {"endpoint": "127.0.0.1:0"},
                    "http": {"endpoint": first.receiver.http_address},
                }
            }
        )


def test_shutdown_is_idempotent_and_stops_serving(start_receiver: Any) -> None:
    r = start_receiver()
    url, target = r.http_url(), r.grpc_target
    r.run(r.receiver.shutdown())
    r.run(r.receiver.shutdown())
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(url, data=GOOD, headers=PB, timeout=5)
    assert grpc_call(target, GOOD).code() == grpc.StatusCode.UNAVAILABLE


def test_include_metadata_copies_headers(start_receiver: Any) -> None:
    r = start_receiver(
        {
            "protocols": {
                "grpc": {"endpoint": "127.0.0.1:0", "include_metadata": True},
                "http": {"endpoint": "127.0.0.1:0", "include_metadata": True},
            }
        }
    )
    assert grpc_call(r.grpc_target, GOOD, metadata=(("x-tenant", "acme"),)).code() == (
        grpc.StatusCode.OK
    )
    requests.post(r.http_url(), data=GOOD, headers={**PB, "X-Tenant": "acme"}, timeout=5)
    grpc_info, http_info = (t.info for t in r.consumer.traces)
    assert grpc_info.headers["x-tenant"] == "acme"
    assert http_info.headers["x-tenant"] == "acme"


def test_headers_are_not_copied_by_default(receiver: Any) -> None:
    grpc_call(receiver.grpc_target, GOOD, metadata=(("x-tenant", "acme"),))
    assert receiver.consumer.traces[0].info.headers == {}


def test_custom_url_paths(start_receiver: Any) -> None:
    r = start_receiver(
        {
            "protocols": {
                "http": {
                    "endpoint": "127.0.0.1:0",
                    "traces_url_path": "/otlp/t",
                    "metrics_url_path": "/otlp/m",
                }
            }
        }
    )
    assert requests.post(r.http_url("/otlp/t"), data=GOOD, headers=PB, timeout=5).ok
    assert requests.post(
        r.http_url("/v1/traces"), data=GOOD, headers=PB, timeout=5
    ).status_code == (404)
    assert len(r.consumer.traces) == 1


def test_grpc_stub_from_the_generated_service(receiver: Any) -> None:
    """The generated TraceServiceStub (what the otlp_grpc exporter uses) talks to it."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

    with grpc.insecure_channel(receiver.grpc_target) as ch:
        resp = TraceServiceStub(ch).Export(ExportTraceServiceRequest.FromString(GOOD), timeout=5)
    assert resp == ExportTraceServiceResponse()
    assert not resp.HasField("partial_success")
    assert TRACES.endswith("/Export")


def test_keepalive_options_are_accepted_by_grpc(start_receiver: Any) -> None:
    keepalive = {
        "server_parameters": {"max_connection_idle": "1s", "time": "10s", "timeout": "2s"},
        "enforcement_policy": {"min_time": "1s", "permit_without_stream": True},
    }
    r = start_receiver({"protocols": {"grpc": {"endpoint": "127.0.0.1:0", "keepalive": keepalive}}})
    assert grpc_call(r.grpc_target, GOOD).code() == grpc.StatusCode.OK


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_shutdown_lets_in_flight_exports_finish(start_receiver: Any, transport: str) -> None:
    """Stopping (SIGTERM) must not drop what a client is already sending: the request in
    flight completes with success, then the server is gone."""
    r = start_receiver()
    r.consumer.delay_s = 1.0
    pool = ThreadPoolExecutor(1)
    if transport == "grpc":
        fut = pool.submit(lambda: grpc_call(r.grpc_target, GOOD).code())
        ok: Any = grpc.StatusCode.OK
    else:
        fut = pool.submit(
            lambda: requests.post(r.http_url(), data=GOOD, headers=PB, timeout=10).status_code
        )
        ok = 200
    deadline = time.monotonic() + 10
    while r.consumer.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert r.consumer.calls == 1, "the request never reached the pipeline"
    r.run(r.receiver.shutdown())
    assert fut.result(10) == ok
    assert len(r.consumer.traces) == 1
    pool.shutdown()


def test_peer_is_the_clients_own_address(receiver: Any) -> None:
    """RequestInfo.peer is the client socket's ip:port: the goblock join maps that port to
    the sending process on this host, so it must be exact."""
    host, port = receiver.receiver.http_address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.connect()
    local_ip, local_port = conn.sock.getsockname()[:2]
    local = f"{local_ip}:{local_port}"
    conn.request("POST", "/v1/traces", body=GOOD, headers=PB)
    assert conn.getresponse().status == 200
    conn.close()
    assert receiver.consumer.traces[-1].info.peer == local

    with grpc.insecure_channel(receiver.grpc_target) as ch:
        call = ch.unary_unary(TRACES, request_serializer=None, response_deserializer=None)
        call(GOOD, timeout=5)
        grpc_port = int(receiver.grpc_target.rsplit(":", 1)[1])
        # grpc's client socket may be IPv6 with a v4-mapped address (::ffff:127.0.0.1)
        ours = {
            f"{c.laddr.ip.removeprefix('::ffff:')}:{c.laddr.port}"
            for c in psutil.Process().net_connections("tcp")
            if c.raddr and c.raddr.port == grpc_port
        }
    assert receiver.consumer.traces[-1].info.peer in ours


def test_ipv6_endpoint(start_receiver: Any) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    r = start_receiver(
        {"protocols": {"grpc": {"endpoint": "[::1]:0"}, "http": {"endpoint": "[::1]:0"}}}
    )
    assert grpc_call(r.grpc_target, GOOD).code() == grpc.StatusCode.OK
    assert requests.post(r.http_url(), data=GOOD, headers=PB, timeout=5).status_code == 200
    grpc_peer, http_peer = (t.info.peer for t in r.consumer.traces)
    assert grpc_peer.startswith("[::1]:") and http_peer.startswith("[::1]:")
