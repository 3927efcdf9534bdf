"""arm64: cross-compiled fixtures read statically (this machine cannot run them).

Proves the arm64 paths that amd64 does not exercise: the ELF machine mapping,
capstone's arm64 RETs (checked against `go tool objdump`), the ADRP/ADD
recovery of waitReasonStrings in stripped binaries, and that DESIGN §5's
"same offsets on amd64/arm64" holds for the toolchains here.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from otel_goblock.golang import REGISTERS, RUNTIME_OFFSETS, GoBinary

from .conftest import Built, build


@pytest.fixture(scope="module")
def arm64(toolchain: str) -> tuple[Built, Built]:
    return (
        build(toolchain, "otelsdk", stripped=False, goarch="arm64"),
        build(toolchain, "otelsdk", stripped=True, goarch="arm64"),
    )


def test_layout_and_version(arm64: tuple[Built, Built], toolchain: str) -> None:
    full, stripped = (GoBinary(str(b.path)) for b in arm64)
    assert full.arch == stripped.arch == "arm64"
    assert full.registers is REGISTERS["arm64"] and full.registers.g == "regs[28]"
    assert full.buildinfo.settings["GOARCH"] == "arm64"
    minor = int(toolchain.split(".")[1])
    assert full.runtime_layout.source == "dwarf"
    assert full.runtime_layout.offsets == RUNTIME_OFFSETS[(1, minor)]
    assert stripped.runtime_layout.source == "table"
    span = "go.opentelemetry.io/otel/sdk/trace.recordingSpan"
    amd64 = GoBinary(str(build(toolchain, "otelsdk", stripped=False).path))
    assert full.field_offset(span, "spanContext.spanID") == amd64.field_offset(
        span, "spanContext.spanID"
    )


def test_symbols_and_wait_reasons_when_stripped(arm64: tuple[Built, Built]) -> None:
    full, stripped = (GoBinary(str(b.path)) for b in arm64)
    assert stripped.symbols.source == "pclntab"
    for name in ("runtime.gopark", "runtime.newproc1", "runtime.gcAssistAlloc"):
        assert full.function(name).entry == stripped.function(name).entry
    assert stripped.wait_reasons.source == "code"
    assert stripped.wait_reasons.names == full.wait_reasons.names


def test_rets_match_go_tool_objdump(go: str, arm64: tuple[Built, Built]) -> None:
    full = arm64[0]
    gb = GoBinary(str(full.path))
    for name in ("runtime.gopark", "runtime.gcAssistAlloc"):
        out = subprocess.run(
            [go, "tool", "objdump", "-s", "^" + re.escape(name) + "$", str(full.path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        want = [int(m.group(1), 16) for m in re.finditer(r"\t0x([0-9a-f]+)\t+d65f03c0\t+RET", out)]
        assert want, name
        probes = gb.ret_probes(name)
        assert [p.vaddr for p in probes] == want, name
        raw = full.path.read_bytes()
        assert all(
            raw[p.file_offset : p.file_offset + 4] == bytes.fromhex("c0035fd6") for p in probes
        )
