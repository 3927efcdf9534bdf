"""Running real `otel-goblock run` processes in tests: config from a dict, free ports,
readiness through the health_check extension, self-telemetry read from /metrics."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A free loopback port outside the kernel's ephemeral range: a port handed out by
    bind(0) is ephemeral, and an outgoing connection of another test may take it before
    the process that is to listen on it starts (seen in CI)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except OSError:
        low = 32768
    for _ in range(200):
        port = random.randrange(10_000, max(10_001, low))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # fall back to the kernel's choice
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_prometheus(text: str) -> dict[str, float]:
    """{'name{labels}': value} and, summed over labels, {'name': value}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        out[key] = float(value)
        name = key.split("{", 1)[0]
        if "{" in key:
            out[name] = out.get(name, 0.0) + float(value)
    return out


class Pipeline:
    """One `otel-goblock run` process. `config` is the collector-style dict; the telemetry
    and health endpoints are set to free ports here."""

    def __init__(
        self,
        config: dict[str, Any],
        workdir: Path,
        name: str = "pipeline",
        command_prefix: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        # e.g. ("setpriv", "--reuid=nobody", …): run the pipeline as another user
        self.command_prefix = command_prefix
        self.workdir = workdir
        self.metrics_port = free_port()
        self.health_port = free_port()
        config = dict(config)
        config.setdefault("extensions", {})["health_check"] = {
            "endpoint": f"127.0.0.1:{self.health_port}"
        }
        service = config.setdefault("service", {})
        service["extensions"] = [*service.get("extensions", []), "health_check"]
        service.setdefault("telemetry", {})["metrics"] = {
            "address": f"127.0.0.1:{self.metrics_port}"
        }
        self.config_path = workdir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0, extra_args: tuple[str, ...] = ()) -> Pipeline:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                *self.command_prefix,
                sys.executable,
                "-m",
                "otel_goblock.cli",
                "run",
                "--config",
                str(self.config_path),
                *extra_args,
            ],
            stdout=log,
            stderr=log,
            cwd=self.workdir,
            env=dict(os.environ),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.log()}")
            url = f"http://127.0.0.1:{self.health_port}/"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1):
                return self
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not healthy within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def metrics(self) -> dict[str, float]:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            return parse_prometheus(r.read().decode())

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def __enter__(self) -> Pipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(f: Any, what: str, timeout_s: float = 30) -> Any:
    """f()'s first truthy value; fails naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not (v := f()):
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return v


def gotrace_traces_pulled(p: Pipeline) -> float:
    """Execution traces the pipeline's gotrace receiver pulled and parsed."""
    m = p.metrics()
    return sum(v for k, v in m.items() if k.startswith("goblock_gotrace_traces") and "ok" in k)
