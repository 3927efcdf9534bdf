"""Every default listening endpoint binds to loopback only: an agent on every node must
not open a port to the network unless the user asks for it.

Checked twice: on the default config objects of every registered component (and the
service's own telemetry endpoint), and on a running `otel-goblock run` whose endpoints are
written `localhost:<port>` — psutil lists its listening sockets, none may be on 0.0.0.0/::.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path
from typing import Any

import psutil

from otel_goblock.component import default_registry
from otel_goblock.config import Endpoint
from otel_goblock.service_config import MetricsTelemetry

from .common import Pipeline, free_port

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}


def endpoints(obj: Any, path: str = "") -> list[tuple[str, str]]:
    """(key path, value) of every Endpoint inside a config dataclass tree."""
    found: list[tuple[str, str]] = []
    if isinstance(obj, Endpoint):
        found.append((path, str(obj)))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            found += endpoints(getattr(obj, f.name), f"{path}.{f.name}".lstrip("."))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            found += endpoints(v, f"{path}.{k}")
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            found += endpoints(v, f"{path}[{i}]")
    return found


def test_every_default_server_endpoint_is_loopback() -> None:
    checked = []
    for factory in default_registry().factories():
        if factory.kind == "exporter":
            continue  # exporters connect, they do not listen
        for key, value in endpoints(factory.create_default_config()):
            host = value.rpartition(":")[0]
            assert host in LOOPBACK_NAMES, f"{factory.kind} {factory.type}: {key} = {value}"
            checked.append(f"{factory.type}.{key}")
    # the receivers and extensions with a server are all covered
    assert {"otlp.protocols.grpc.endpoint", "otlp.protocols.http.endpoint"} <= set(checked)
    assert "health_check.endpoint" in checked


def test_service_telemetry_default_is_loopback() -> None:
    addr = MetricsTelemetry().address
    assert addr is not None and addr.host in LOOPBACK_NAMES, addr


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)  # grpc listens on ::ffff:127.0.0.1
    return (mapped or addr).is_loopback


def test_running_pipeline_listens_on_loopback_only(tmp_path: Path) -> None:
    g, h, hc = free_port(), free_port(), free_port()
    cfg = {
        "receivers": {
            "otlp": {
                "protocols": {
                    "grpc": {"endpoint": f"localhost:{g}"},
                    "http": {"endpoint": f"localhost:{h}"},
                }
            }
        },
        "exporters": {"debug": {}},
        "extensions": {"health_check/2": {"endpoint": f"localhost:{hc}"}},
        "service": {
            "extensions": ["health_check/2"],
            "pipelines": {"traces": {"receivers": ["otlp"], "exporters": ["debug"]}},
        },
    }
    with Pipeline(cfg, tmp_path) as p:
        assert p.proc is not None
        listening = [
            c.laddr
            for c in psutil.Process(p.proc.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
    ports = {a.port for a in listening}
    assert {g, h, hc, p.metrics_port, p.health_port} <= ports, listening
    exposed = [a for a in listening if not _is_loopback(a.ip)]
    assert not exposed, f"listening beyond loopback: {exposed}"
