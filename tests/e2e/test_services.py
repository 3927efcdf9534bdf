"""The harness's own promises: services listen on loopback only, the stripped build is
really stripped and still works, services.sh is idempotent and stops cleanly (flushing the
demo's spans), and the load driver reports what it measured."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
from collections.abc import Callable

import psutil
import pytest
from elftools.elf.elffile import ELFFile
from harness import (
    DemoBuild,
    DemoService,
    JaegerClient,
    JaegerService,
    build_demo,
    hit,
    listening_sockets,
    run_scenario,
)
from harness.services import ROOT

pytestmark = pytest.mark.e2e


def test_nothing_listens_beyond_loopback(jaeger: JaegerService, demo: DemoService) -> None:
    """Jaeger opens exactly the ports of scripts/jaeger-config.yaml, the demo its HTTP port
    plus its in-process gRPC server and TCP backend, all on 127.0.0.1 (what `ss -ltnup`
    would show for the two pids)."""
    assert jaeger.pid is not None and demo.pid is not None
    socks = {
        name: listening_sockets(pid) for name, pid in (("jaeger", jaeger.pid), ("demo", demo.pid))
    }
    for name, found in socks.items():
        assert found, f"{name}: no listening socket found"
        for proto, ip, port in found:
            assert ipaddress.ip_address(ip).is_loopback, f"{name} listens on {proto} {ip}:{port}"
    assert {port for proto, _ip, port in socks["jaeger"] if proto == "tcp"} == jaeger.ports
    assert not [s for s in socks["jaeger"] if s[0] == "udp"]
    demo_tcp = [s for s in socks["demo"] if s[0] == "tcp"]
    assert demo.port in {port for _p, _ip, port in demo_tcp}
    assert len(demo_tcp) == 3  # HTTP, gRPC server, TCP backend


def sections(path: object) -> set[str]:
    with open(str(path), "rb") as f:
        return {s.name for s in ELFFile(f).iter_sections()}


def test_stripped_build_has_no_dwarf_and_no_symtab(demo_build: DemoBuild) -> None:
    full, stripped = sections(demo_build.dwarf), sections(demo_build.stripped)
    assert ".symtab" in full and ".debug_info" in full
    with open(demo_build.dwarf, "rb") as f:
        assert ELFFile(f).has_dwarf_info()
    assert ".symtab" not in stripped
    assert not [s for s in stripped if s.startswith((".debug", ".zdebug"))], stripped
    with open(demo_build.stripped, "rb") as f:
        assert not ELFFile(f).has_dwarf_info()
    # what stripped-binary handling relies on survives (DESIGN §5)
    for kept in (".gopclntab", ".go.buildinfo", ".note.go.buildid"):
        assert kept in stripped, kept


def test_stripped_build_serves_and_exports(
    start_demo: Callable[..., DemoService], jaeger: JaegerService, jaeger_client: JaegerClient
) -> None:
    demo = start_demo(
        otlp_endpoint=jaeger.otlp_endpoint, variant="stripped", service_name="demo-stripped"
    )
    assert demo.pid is not None
    assert psutil.Process(demo.pid).cmdline()[0] == str(ROOT / "build" / "demo-service-stripped")
    _r, trace = run_scenario(demo.url, jaeger_client, "/chan?ms=50")
    span = trace.one("GET /chan", "server")
    assert span.service == "demo-stripped"
    assert span.resource["process.pid"] == demo.pid
    assert span.duration_ms >= 50


def process_alive(pid: int) -> bool:
    """Exists and is not a zombie: the services are orphans, reaped by the machine's init
    whenever it gets to it, which is not the service's business."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def services_sh(action: str, svc: DemoService) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GOBLOCK_RUN_DIR=str(svc.run_dir), **svc.script_env())
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "services.sh"), action, "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_services_script_is_idempotent_and_stop_flushes_spans(
    start_demo: Callable[..., DemoService], jaeger: JaegerService, jaeger_client: JaegerClient
) -> None:
    """A second start keeps the running instance; status answers 0 running / 3 stopped;
    stop is clean and idempotent. With a batch delay of 10 minutes, the only way the last
    request's span reaches Jaeger is the flush on SIGTERM."""
    demo = start_demo(
        otlp_endpoint=jaeger.otlp_endpoint,
        service_name="demo-lifecycle",
        extra_env={"OTEL_BSP_SCHEDULE_DELAY": "600000"},
    )
    pid = demo.pid
    assert pid is not None
    again = services_sh("start", demo)
    assert again.returncode == 0 and "already running" in again.stderr
    assert demo.pid == pid
    status = services_sh("status", demo)
    assert status.returncode == 0 and "ready" in status.stdout and f"pid {pid}" in status.stdout

    r = hit(demo.url, "/sleep?ms=20")
    assert r.status == 200
    assert jaeger_client.trace(r.trace_id) is None  # still in the batch queue
    demo.stop()
    assert demo.pid is None
    assert not process_alive(pid)
    assert "stopped" in demo.log  # the demo's own log line after flushing
    assert services_sh("status", demo).returncode == 3
    assert services_sh("stop", demo).returncode == 0
    trace = jaeger_client.wait_trace(r.trace_id)
    assert trace.one("GET /sleep", "server").service == "demo-lifecycle"


def test_load_driver_reports_throughput_and_percentiles(
    demo_build: DemoBuild, demo: DemoService
) -> None:
    p = subprocess.run(
        [
            str(demo_build.dwarf),
            "load",
            "-url",
            demo.url,
            "-scenario",
            "/sleep?ms=20@3,/chan?ms=10",
            "-rate",
            "40",
            "-concurrency",
            "4",
            "-duration",
            "1s",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rep = json.loads(p.stdout)
    assert rep["errors"] == 0
    assert 20 <= rep["requests"] <= 45
    assert rep["throughput_rps"] > 10
    lat = rep["latency_ms"]
    assert 10 <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert set(rep["per_scenario_latency_ms"]) == {"/sleep?ms=20", "/chan?ms=10"}
    assert rep["per_scenario_latency_ms"]["/sleep?ms=20"]["p50"] >= 20


def test_go127_build_serves(
    start_demo: Callable[..., DemoService], jaeger: JaegerService, jaeger_client: JaegerClient
) -> None:
    """The GOTOOLCHAIN=go1.27.3 build (for the Go-runtime layout tests) is what it says and
    works like the default one. Cached after the first build (~40 s cold)."""
    build = build_demo(go127=True)
    for binary in (build.dwarf, build.stripped):
        with open(binary, "rb") as f:
            elf = ELFFile(f)
            data = elf.get_section_by_name(".go.buildinfo").data()
        assert b"go1.27.3" in data, binary
    demo = start_demo(
        otlp_endpoint=jaeger.otlp_endpoint, binary=build.dwarf, service_name="demo-go127"
    )
    r = hit(demo.url, "/mutex?ms=30")
    assert r.status == 200, r.body
    span = jaeger_client.wait_trace(r.trace_id).one("GET /mutex", "server")
    assert span.service == "demo-go127" and span.duration_ms >= 30


def test_start_moves_to_new_port_when_its_port_is_taken(
    start_demo: Callable[..., DemoService], jaeger: JaegerService
) -> None:
    """Free ports can be taken by another test run before the service binds them; the
    harness then starts on fresh ports instead of failing. The port is really taken here."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        demo = start_demo(otlp_endpoint=jaeger.otlp_endpoint, port=taken)
        assert demo.port != taken
        assert hit(demo.url, "/sleep?ms=1").status == 200
    demo.stop()


@pytest.mark.parametrize("flag", ["-listen", "-grpc-listen", "-backend-listen"])
def test_demo_refuses_non_loopback_addresses(demo_build: DemoBuild, flag: str) -> None:
    """The demo blocks on purpose and serves pprof: it must never listen beyond loopback."""
    p = subprocess.run(
        [str(demo_build.dwarf), flag, "0.0.0.0:0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=dict(os.environ, OTEL_METRICS_EXPORTER="none"),
    )
    assert p.returncode != 0
    assert "only loopback addresses are allowed" in p.stderr
