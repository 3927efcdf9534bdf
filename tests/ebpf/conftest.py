"""Fixtures of the eBPF receiver tests (helpers in ebpf_harness.py).

The receiver is compiled and attached once per session (`receiver`); tests tell their
processes apart by pid.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ebpf_harness import FIXTURE_CACHE, FIXTURE_SRC, GO, Proc, Running, require_ebpf


@pytest.fixture(autouse=True)
def _ebpf_gate(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("ebpf") is not None:
        require_ebpf()


@pytest.fixture(scope="session")
def gbfx() -> Path:
    """Path of the built target program (rebuilt only when its sources change)."""
    h = hashlib.sha256()
    for f in sorted(FIXTURE_SRC.glob("*")):
        h.update(f.name.encode() + f.read_bytes())
    out = FIXTURE_CACHE / f"gbfx-{h.hexdigest()[:12]}" / "gbfx"  # comm stays "gbfx"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
        subprocess.run([GO, "build", "-o", str(out), "."], cwd=FIXTURE_SRC, env=env, check=True)
    return out


@pytest.fixture(scope="session")
def receiver(gbfx: Path) -> Iterator[Running]:
    """The session's receiver: every concern on, targets = processes named gbfx."""
    require_ebpf()
    # the kernel-side concerns only: the Go runtime and grpc probes have tests of their
    # own (test_go_runtime.py, tests/goruntime, tests/grpc), and attaching them to every
    # short-lived fixture process delays the first events these tests time
    r = Running(
        {
            "targets": [{"comm": "^gbfx$"}],
            "metrics_interval": "1s",
            "go_runtime": {"parks": False, "gc": False, "lineage": False, "span_markers": False},
            "go_grpc": {"enabled": False},
        }
    ).start()
    yield r
    r.stop()


@pytest.fixture
def run_gbfx(gbfx: Path) -> Iterator[Callable[..., Proc]]:
    procs: list[Proc] = []

    def start(*args: str, prefix: tuple[str, ...] = ()) -> Proc:
        p = Proc([*prefix, str(gbfx), *args])
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()
