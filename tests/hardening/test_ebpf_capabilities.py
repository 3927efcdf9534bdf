"""The eBPF receiver's minimal capability set, tested on a real `otel-goblock run`.

Found by experiment (capsh dropping every other capability from the bounding set, the
agent running as uid 0, the target Go program as `nobody`): CAP_BPF + CAP_PERFMON +
CAP_SYS_PTRACE. CAP_SYS_ADMIN, CAP_SYS_RESOURCE (memlock: BPF memory is memcg-accounted
since 5.11), CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH are not needed. CAP_SYS_PTRACE is
needed to read /proc/<pid>/exe and /proc/<pid>/fd of a target — also of a root target,
since the agent's capabilities are then not a superset of the target's.

Each case starts a pipeline under `capsh --drop=<all others>` and looks at its
self-telemetry (`goblock_events_received_total`) or at why it failed to start.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .common import Pipeline, parse_prometheus
from .gbfx import gbfx_binary

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ebpf"))
from ebpf_harness import require_ebpf

MINIMAL = ("cap_bpf", "cap_perfmon", "cap_sys_ptrace")
PIPE_READS = ("pipe", "20", "3000")  # ~60 s; killed at the end


def bounding_set() -> list[str]:
    out = subprocess.run(["capsh", "--print"], capture_output=True, text=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("Bounding set ="))
    return line.split("=", 1)[1].split(",")


@pytest.fixture
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A Go target owned by `nobody`, doing blocking pipe reads until killed."""
    require_ebpf()
    d = tmp_path_factory.mktemp("captarget")
    d.chmod(0o755)
    exe = d / "gbfx"
    shutil.copy2(gbfx_binary(), exe)
    exe.chmod(0o755)
    p = subprocess.Popen(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", str(exe), *PIPE_READS],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield exe, p.pid
    finally:
        p.kill()
        p.wait()


def run_with_caps(
    tmp_path: Path, exe: Path, keep: tuple[str, ...]
) -> tuple[int | None, str, float]:
    """Start a pipeline keeping only `keep`; (exit code or None while running, log,
    events received after a few seconds)."""
    cfg = {
        "receivers": {"ebpf": {"targets": [{"exe": str(exe)}], "metrics_interval": "1s"}},
        "exporters": {"debug": {}},
        "service": {"pipelines": {"traces": {"receivers": ["ebpf"], "exporters": ["debug"]}}},
    }
    p = Pipeline(cfg, tmp_path, name="caps-" + "-".join(k[4:] for k in keep))
    drop = [c for c in bounding_set() if c not in keep]
    cmd = [sys.executable, "-m", "otel_goblock.cli", "run", "--config", str(p.config_path)]
    with p.log_path.open("ab") as log:
        proc = subprocess.Popen(
            ["capsh", f"--drop={','.join(drop)}", "--", "-c", 'exec "$@"', "sh", *cmd],
            stdout=log,
            stderr=log,
            cwd=tmp_path,
        )
    p.proc = proc
    try:
        # started = the service logged it is ready (every receiver started, BCC compiled)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if "everything is ready" in p.log():
                break
            time.sleep(0.2)
        received = 0.0
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            url = f"http://127.0.0.1:{p.metrics_port}/metrics"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as r:
                m = parse_prometheus(r.read().decode())
                received = m.get("goblock_events_received_total", 0.0)
                if received > 0:
                    break
            time.sleep(0.3)
        return proc.poll(), p.log(), received
    finally:
        p.stop()


@pytest.mark.ebpf
def test_minimal_set_starts_and_observes_the_target(tmp_path: Path, target) -> None:
    exe, _ = target
    rc, log, received = run_with_caps(tmp_path, exe, MINIMAL)
    assert rc is None, log
    assert received > 0, log


@pytest.mark.ebpf
@pytest.mark.parametrize("missing", ["cap_bpf", "cap_perfmon"])
def test_without_one_bpf_capability_startup_fails_naming_it(
    tmp_path: Path, target, missing: str
) -> None:
    exe, _ = target
    rc, log, _ = run_with_caps(tmp_path, exe, tuple(c for c in MINIMAL if c != missing))
    assert rc == 1, log
    assert f"missing {missing.upper()}" in log


@pytest.mark.ebpf
def test_without_sys_ptrace_startup_fails_naming_it(tmp_path: Path, target) -> None:
    exe, _ = target
    rc, log, received = run_with_caps(tmp_path, exe, ("cap_bpf", "cap_perfmon"))
    assert received == 0  # the gap itself: nothing observed
    assert rc == 1 and "CAP_SYS_PTRACE" in log, log
