"""RET offsets: real c3 bytes inside the function, as `go tool objdump` lists them."""

from __future__ import annotations

import re
import subprocess

import pytest

from otel_goblock.golang import GoBinary, GoBinaryError
from otel_goblock.golang.disasm import ret_offsets

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
