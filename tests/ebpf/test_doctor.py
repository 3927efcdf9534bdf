"""`doctor`: passes on this machine, names a missing capability when one is dropped."""

from __future__ import annotations

import subprocess
import sys

import pytest
from ebpf_harness import REPO

from otel_goblock.doctor import ALL_TRACEPOINTS, run_doctor

pytestmark = pytest.mark.ebpf


def test_doctor_passes_here_with_a_line_per_check():
    ok, lines = run_doctor()
    assert ok, "\n".join(lines)
    text = "\n".join(lines)
    for tp in ALL_TRACEPOINTS:
        assert f"tracepoint {tp}: present" in text
    for name in (
        "kernel:",
        "btf:",
        "tracefs:",
        "capabilities:",
        "perf_event_paranoid:",
        "kernel headers:",
        "bcc:",
        "bcc compile+load:",
    ):
        assert name in text


def test_doctor_names_the_dropped_capability_and_exits_non_zero():
    res = subprocess.run(
        [
            "capsh",
            "--drop=cap_bpf,cap_sys_admin,cap_perfmon",
            "--",
            "-c",
            f'exec "{sys.executable}" -m otel_goblock.doctor',
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert res.returncode != 0
    cap_line = next(ln for ln in res.stdout.splitlines() if "capabilities:" in ln)
    assert cap_line.startswith("FAIL")
    assert "missing CAP_BPF and CAP_PERFMON" in cap_line
    assert "fix:" in cap_line
    load_line = next(ln for ln in res.stdout.splitlines() if "bcc compile+load" in ln)
    assert load_line.startswith("FAIL")
