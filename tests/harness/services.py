"""Build and run the test services through scripts/build_*.sh and scripts/services.sh.

Why through the scripts: setup, CI, benchmarks and a person at a shell then build and start
things one way, and the scripts' own behaviour (caching, readiness waits, PID files, clean
stop) is what the tests exercise. Each service instance gets its own run directory, so
several instances (and several concurrent test runs on one machine) never share PID files,
and free ports, so none collides with another run or with otel-goblock's defaults.
"""

from __future__ import annotations

import os
import socket
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import psutil

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
BUILD_TIMEOUT_S = 1800  # a cold Jaeger build downloads and compiles ~1000 packages


def free_ports(n: int) -> list[int]:
    """n distinct free TCP ports on 127.0.0.1. All sockets are held open until every port is
    chosen, so the kernel cannot hand the same port out twice."""
    with ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        return ports


def _run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120) -> str:
    """Run a script; on failure raise with its output, which says what went wrong."""
    p = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if p.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)} exited {p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}"
        )
    return p.stdout + p.stderr


@dataclass(frozen=True)
class DemoBuild:
    """The two builds of the demo service: with DWARF (default) and stripped (-s -w)."""

    dwarf: Path
    stripped: Path


def build_demo(go127: bool = False) -> DemoBuild:
    """Build (or reuse, when sources are unchanged) the demo service. With go127, the
    GOTOOLCHAIN=go1.27.3 builds under build/go1.27/ are returned instead."""
    _run(
        ["bash", str(SCRIPTS / "build_demo.sh"), *(["--go127"] if go127 else [])],
        timeout=BUILD_TIMEOUT_S,
    )
    out = ROOT / "build" / ("go1.27" if go127 else "")
    return DemoBuild(dwarf=out / "demo-service", stripped=out / "demo-service-stripped")


def build_jaeger() -> Path:
    """Build (or reuse) Jaeger v1.76 from the Go module proxy."""
    _run(["bash", str(SCRIPTS / "build_jaeger.sh")], timeout=BUILD_TIMEOUT_S)
    return ROOT / "build" / "bin" / "jaeger"


@dataclass
class _Service:
    """One instance of a service managed by scripts/services.sh in its own run dir."""

    name: ClassVar[str]  # "jaeger" or "demo": the services.sh service
    run_dir: Path

    def script_env(self) -> dict[str, str]:
        """The environment services.sh reads for this instance (ports, binary, OTLP)."""
        raise NotImplementedError

    def _script(self, action: str) -> str:
        env = dict(os.environ, GOBLOCK_RUN_DIR=str(self.run_dir), **self.script_env())
        return _run(["bash", str(SCRIPTS / "services.sh"), action, self.name], env=env)

    def start(self) -> None:
        """Start and wait until ready. A free port can be taken by another process between
        choosing it and binding it (other test runs share the machine): then pick new ports
        and try again."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            try:
                self._script("start")
                return
            except RuntimeError:
                if attempt == 2 or "address already in use" not in self.log:
                    raise
                self.repick_ports()

    def repick_ports(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        self._script("stop")

    def running(self) -> bool:
        return self.pid is not None

    @property
    def pid(self) -> int | None:
        """The service's pid while it runs (what otel-goblock filters on), else None."""
        try:
            pid = int((self.run_dir / f"{self.name}.pid").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return pid if psutil.pid_exists(pid) else None

    @property
    def log(self) -> str:
        try:
            return (self.run_dir / f"{self.name}.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> _Service:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class JaegerService(_Service):
    """Jaeger on free loopback ports (scripts/jaeger-config.yaml reads them from env)."""

    name: ClassVar[str] = "jaeger"
    otlp_grpc_port: int = 0
    otlp_http_port: int = 0
    query_port: int = 0
    query_grpc_port: int = 0
    health_port: int = 0
    metrics_port: int = 0

    _PORTS: ClassVar[tuple[str, ...]] = (
        "otlp_grpc_port",
        "otlp_http_port",
        "query_port",
        "query_grpc_port",
        "health_port",
        "metrics_port",
    )

    def __post_init__(self) -> None:
        for attr, port in zip(self._PORTS, free_ports(len(self._PORTS)), strict=True):
            if not getattr(self, attr):
                setattr(self, attr, port)

    def repick_ports(self) -> None:
        for attr, port in zip(self._PORTS, free_ports(len(self._PORTS)), strict=True):
            setattr(self, attr, port)

    def script_env(self) -> dict[str, str]:
        return {
            "JAEGER_OTLP_GRPC_PORT": str(self.otlp_grpc_port),
            "JAEGER_OTLP_HTTP_PORT": str(self.otlp_http_port),
            "JAEGER_QUERY_PORT": str(self.query_port),
            "JAEGER_QUERY_GRPC_PORT": str(self.query_grpc_port),
            "JAEGER_HEALTH_PORT": str(self.health_port),
            "JAEGER_METRICS_PORT": str(self.metrics_port),
        }

    @property
    def ports(self) -> set[int]:
        """Every port the config opens (a test checks nothing else listens)."""
        return {int(v) for v in self.script_env().values()}

    @property
    def otlp_endpoint(self) -> str:
        """OTLP/gRPC endpoint in the form OTEL_EXPORTER_OTLP_ENDPOINT takes."""
        return f"http://127.0.0.1:{self.otlp_grpc_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"


@dataclass
class DemoService(_Service):
    """The demo service on a free loopback port, exporting OTLP/gRPC to `otlp_endpoint`
    (Jaeger directly, or an otel-goblock pipeline in between)."""

    otlp_endpoint: str = ""
    name: ClassVar[str] = "demo"
    variant: str = "dwarf"  # or "stripped"
    service_name: str = "demo-service"
    port: int = 0
    binary: Path | None = None  # e.g. a go1.27 build; default: the variant in build/
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.otlp_endpoint:
            raise ValueError("otlp_endpoint: expected http://host:port, got nothing")
        if not self.port:
            self.port = free_ports(1)[0]

    def repick_ports(self) -> None:
        self.port = free_ports(1)[0]

    def script_env(self) -> dict[str, str]:
        env = {
            "DEMO_PORT": str(self.port),
            "DEMO_VARIANT": self.variant,
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.otlp_endpoint,
            "OTEL_SERVICE_NAME": self.service_name,
            **self.extra_env,
        }
        if self.binary is not None:
            env["DEMO_BIN"] = str(self.binary)
        return env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def listening_sockets(pid: int) -> list[tuple[str, str, int]]:
    """(proto, ip, port) of every listening TCP socket and bound UDP socket of a process,
    for the check that services listen on loopback only (the same data `ss -ltnup` shows)."""
    out = []
    for c in psutil.Process(pid).net_connections(kind="inet"):
        if c.type == socket.SOCK_STREAM and c.status != psutil.CONN_LISTEN:
            continue
        if c.type == socket.SOCK_DGRAM and c.raddr:
            continue
        out.append(("tcp" if c.type == socket.SOCK_STREAM else "udp", c.laddr.ip, c.laddr.port))
    return out
