"""The target crashes and restarts under load (issue #9, faults), end to end: a real
`otel-goblock run` (otlp + ebpf with every concern → memory_limiter → goblock → batch →
file) observes the demo service while its load driver runs; the demo is `kill -9`ed
mid-load and started again. The agent keeps running, attaches to the new process (its
spans are enriched again) and holds no more uprobes on the binary than it did for one
process (the crashed one's are detached). (Probes left after the agent stops: BCC's
perf-event uprobes die with the agent's fds; tests/ebpf/test_lifecycle.py checks no BPF
program is left after a receiver shutdown. Receiver-level crash/restart checks:
tests/ebpf/test_go_runtime.py, tests/ebpf/test_lifecycle.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .common import Pipeline, free_port

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests" / "ebpf"))
from ebpf_harness import require_ebpf  # noqa: E402
from harness import DemoService, build_demo  # noqa: E402
from otel_goblock.receivers.otlp.otlpjson import decode_traces  # noqa: E402
from soak import pipeline_config  # noqa: E402

SCENARIOS = "/sleep?ms=5,/mutex?ms=5,/net?ms=5,/syscall?ms=5"


def uprobes_on(binary: Path, owner: int) -> int:
    """uprobes on the binary held by process `owner` (BCC attaches them as perf events;
    other test runs on this machine may probe the same binary, so count only ours)."""
    perf = subprocess.run(
        ["bpftool", "-j", "perf", "list"], capture_output=True, text=True, check=True
    )
    return sum(
        1
        for e in json.loads(perf.stdout or "[]")
        if e.get("pid") == owner and e.get("filename") == str(binary)
    )


def enriched_spans_of(path: Path, pid: int) -> int:
    """Server spans of process `pid` that carry goblock's `goblock.cause`."""
    n = 0
    if not path.exists():
        return 0
    for line in path.read_text().split("\n")[:-1]:  # the last line may be half written
        if '"resourceSpans"' not in line:
            continue
        for rs in decode_traces(line).resource_spans:
            attrs = {a.key: a.value for a in rs.resource.attributes}
            if "process.pid" not in attrs or attrs["process.pid"].int_value != pid:
                continue
            for ss in rs.scope_spans:
                for s in ss.spans:
                    if not s.name.startswith("goblock") and any(
                        a.key == "goblock.cause" for a in s.attributes
                    ):
                        n += 1
    return n


def load(binary: Path, url: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(str(binary), "load", "-url", url, "-scenario", SCENARIOS),
            *("-rate", "100", "-concurrency", "8", "-duration", f"{seconds}s"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(cond, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.3)
    return bool(cond())


@pytest.mark.e2e
@pytest.mark.ebpf
def test_target_killed_and_restarted_under_load(tmp_path: Path) -> None:
    require_ebpf()
    binary = build_demo().dwarf
    port = free_port()
    out = tmp_path / "out.jsonl"
    pipeline = Pipeline(pipeline_config(port, out, binary), tmp_path, "agent")
    demo = DemoService(run_dir=tmp_path / "demo", otlp_endpoint=f"http://127.0.0.1:{port}")
    pipeline.start(timeout=90)
    assert pipeline.proc is not None
    agent = pipeline.proc.pid
    try:
        demo.start()
        first = demo.pid
        assert first is not None
        driver = load(binary, demo.url, 6)
        assert wait_for(lambda: enriched_spans_of(out, first) >= 20, 30), pipeline.log()[-3000:]
        with_one = uprobes_on(binary, agent)
        assert with_one > 0  # the Go runtime probes are on
        os.kill(first, signal.SIGKILL)  # crash mid-load
        driver.communicate(timeout=60)  # the rest of its run fails: the port is dead

        demo.start()  # same port, a new process
        second = demo.pid
        assert second is not None and second != first
        driver = load(binary, demo.url, 5)
        assert wait_for(lambda: enriched_spans_of(out, second) >= 20, 30), pipeline.log()[-3000:]
        report, _ = driver.communicate(timeout=60)
        assert driver.returncode == 0, report
        assert pipeline.proc is not None and pipeline.proc.poll() is None  # the agent runs on
        # the crashed process's probes are gone: one process's worth, not two
        assert wait_for(lambda: uprobes_on(binary, agent) == with_one, 10), (
            uprobes_on(binary, agent),
            with_one,
        )
        m = pipeline.metrics()
        assert m.get("otelcol_exporter_send_failed_spans_total", 0) == 0
    finally:
        demo.stop()
        assert pipeline.stop() == 0
