"""The one rule for tests that need eBPF: they skip where it is unavailable, except under
GOBLOCK_REQUIRE_EBPF=1 (CI), where that is a failure: CI must never pass by skipping the
tests that matter most. Used by tests/conftest.py (the `ebpf` marker) and by fixtures that
start a receiver (tests/ebpf/ebpf_harness.py)."""

from __future__ import annotations

import functools
import os

import pytest


def required() -> bool:
    return os.environ.get("GOBLOCK_REQUIRE_EBPF") == "1"


@functools.cache
def ebpf_unavailable_reason() -> str | None:
    """Why BPF tests cannot run here (with the fix, from `otel-goblock doctor`), or None."""
    if os.geteuid() != 0:
        return "needs root (CAP_BPF + CAP_PERFMON): run as root"
    from otel_goblock.doctor import run_doctor

    ok, lines = run_doctor(compile_=False)
    if not ok:
        return "; ".join(ln for ln in lines if ln.startswith("FAIL"))
    return None


def require_ebpf() -> None:
    reason = ebpf_unavailable_reason()
    if reason is None:
        return
    if required():
        pytest.fail(f"GOBLOCK_REQUIRE_EBPF=1 but eBPF is unavailable: {reason}")
    pytest.skip(f"eBPF unavailable: {reason}")
