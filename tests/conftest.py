"""Suite-wide rules.

eBPF tests (marked `ebpf`) need root and a working BCC. Without them they skip, except
under GOBLOCK_REQUIRE_EBPF=1 (CI), where a missing capability is a failure: CI must never
pass by skipping the tests that matter most.
"""

from __future__ import annotations

import functools
import os

import pytest


@functools.cache
def ebpf_unavailable_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (CAP_BPF + CAP_PERFMON): run as root"
    try:
        from otel_goblock.receivers.ebpf.program import import_bcc

        import_bcc()
    except Exception as e:  # ImportError, or the PyPI lattice `bcc`
        return f"BCC is not importable ({e}): run scripts/setup.sh"
    if not os.path.exists(f"/lib/modules/{os.uname().release}/build"):
        return "kernel headers are not linked for BCC: run scripts/setup.sh"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    required = os.environ.get("GOBLOCK_REQUIRE_EBPF") == "1"
    for item in items:
        if item.get_closest_marker("ebpf") is None:
            continue
        reason = ebpf_unavailable_reason()
        if reason is None:
            continue
        if required:
            item.add_marker(pytest.mark.usefixtures("_ebpf_required_but_unavailable"))
        else:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def _ebpf_required_but_unavailable() -> None:
    pytest.fail(f"GOBLOCK_REQUIRE_EBPF=1 but eBPF is unavailable: {ebpf_unavailable_reason()}")
