"""Suite-wide rules.

eBPF tests (marked `ebpf`) need root and a working BCC. Without them they skip, except
under GOBLOCK_REQUIRE_EBPF=1 (CI), where a missing capability is a failure: CI must never
pass by skipping the tests that matter most.
"""

from __future__ import annotations

import ebpfgate
import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    required = ebpfgate.required()
    for item in items:
        if item.get_closest_marker("ebpf") is None:
            continue
        reason = ebpfgate.ebpf_unavailable_reason()
        if reason is None:
            continue
        if required:
            item.add_marker(pytest.mark.usefixtures("_ebpf_required_but_unavailable"))
        else:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def _ebpf_required_but_unavailable() -> None:
    ebpfgate.require_ebpf()
