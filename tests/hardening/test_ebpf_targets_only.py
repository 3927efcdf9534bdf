"""The eBPF agent observes only its configured targets: two copies of the same Go program
run the same workload side by side (same comm, "gbfx"); only the one whose executable
path is configured produces events — of any kind, from any concern."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ebpf"))
from ebpf_harness import Proc, Running, require_ebpf

from .gbfx import gbfx_binary


@pytest.mark.ebpf
def test_only_the_targeted_process_is_observed(tmp_path: Path) -> None:
    require_ebpf()
    src = gbfx_binary()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    target, other = tmp_path / "a" / "gbfx", tmp_path / "b" / "gbfx"
    shutil.copy2(src, target)
    shutil.copy2(src, other)
    r = Running({"targets": [{"exe": str(target)}], "metrics_interval": "1s"}, name="only")
    r.start()
    try:
        a = Proc([str(target), "pipe", "20", "5"])
        b = Proc([str(other), "pipe", "20", "5"])
        assert a.p.wait(30) == 0 and b.p.wait(30) == 0
        assert r.sink.wait_for(
            lambda: sum(e.attrs.get("name") == "read" for e in r.sink.of(a.pid, "syscall")) >= 5
        )
        pids = {e.pid for e in r.sink.events}
    finally:
        r.stop()
    assert r.sink.of(b.pid) == []
    assert pids == {a.pid}, f"events from untargeted pids: {pids - {a.pid}}"
