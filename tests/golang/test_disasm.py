"""RET offsets: real c3 bytes inside the function, as `go tool objdump` lists them."""

from __future__ import annotations

import re
import subprocess

import pytest

from otel_goblock.golang import GoBinary, GoBinaryError
from otel_goblock.golang.disasm import call_after_field_store, ret_offsets

from .conftest import Built

FUNCS = (
    "runtime.gopark",
    "runtime.gcAssistAlloc",
    "runtime.newproc1",
    "go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).End",
)


def test_rets_are_c3_inside_the_function(otel_stripped: Built) -> None:
    gb = GoBinary(str(otel_stripped.path))
    raw = otel_stripped.path.read_bytes()
    for name in FUNCS:
        f = gb.function(name)
        probes = gb.ret_probes(name)
        assert probes, name
        for p in probes:
            assert f.entry <= p.vaddr < f.end
            assert raw[p.file_offset] == 0xC3
            assert gb.image.read(p.vaddr, 1) == b"\xc3"


def test_rets_match_go_tool_objdump(go: str, otel_dwarf: Built) -> None:
    gb = GoBinary(str(otel_dwarf.path))
    pattern = "^(" + "|".join(re.escape(n) for n in FUNCS) + ")$"
    out = subprocess.run(
        [go, "tool", "objdump", "-s", pattern, str(otel_dwarf.path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # objdump prints "TEXT <name>(SB) <file>" then one line per instruction.
    want: dict[str, list[int]] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("TEXT "):
            current = line[5:].split("(SB)")[0]
            want[current] = []
        elif m := re.search(r"\t0x([0-9a-f]+)\t+c3\t+RET", line):
            want[current].append(int(m.group(1), 16))
    assert set(want) == set(FUNCS)
    for name in FUNCS:
        assert want[name], name
        assert [p.vaddr for p in gb.ret_probes(name)] == want[name], name


def test_arm64_ret_mapping() -> None:
    """arm64 is not built here; capstone decodes real arm64 words: nop; ret; ret x1."""
    code = bytes.fromhex("1f2003d5c0035fd620005fd6")
    assert ret_offsets(code, "arm64") == [4, 8]


def test_undecodable_bytes_do_not_hide_later_rets() -> None:
    code = b"\x0f\xff\x06\x07" + b"\x90\xc3"  # invalid opcodes, then nop; ret
    assert ret_offsets(code, "amd64") == [5]


def test_unknown_arch() -> None:
    with pytest.raises(GoBinaryError, match="not supported"):
        ret_offsets(b"\x00", "riscv64")


def test_newproc1_result_is_probed_at_the_casgstatus_call(go: str, otel_dwarf: Built) -> None:
    """The call after `newg.goid = …` (an emulated instruction: one cheap trap) stands in
    for newproc1's RETs (two expensive ones): objdump agrees it is `CALL
    runtime.casgstatus`, right after a store to g.goid, with AX = that g."""
    gb = GoBinary(str(otel_dwarf.path))
    goid = gb.runtime_layout["g.goid"]
    at = call_after_field_store(gb, "runtime.newproc1", goid, "runtime.casgstatus")
    assert at is not None
    out = subprocess.run(
        [go, "tool", "objdump", "-s", "^runtime.newproc1$", str(otel_dwarf.path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [ln for ln in out.splitlines() if "\t0x" in ln]
    i = next(k for k, ln in enumerate(lines) if f"\t{hex(at)}\t" in ln)
    assert "CALL runtime.casgstatus(SB)" in lines[i]
    before = "\n".join(lines[max(0, i - 6) : i])
    m = re.search(rf"MOVQ \w+, {hex(goid)}\((\w+)\)", before)
    assert m, before
    assert m.group(1) == "AX" or f"MOVQ {m.group(1)}, AX" in before, before


def test_no_call_is_offered_when_the_result_is_not_in_rax(otel_dwarf: Built) -> None:
    gb = GoBinary(str(otel_dwarf.path))
    # gopark never stores a goid before a call: nothing to move its exits to
    assert call_after_field_store(gb, "runtime.gopark", 0x98, "runtime.casgstatus") is None
