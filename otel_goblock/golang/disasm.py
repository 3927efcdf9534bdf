"""Return-instruction offsets of a function, for uprobes on function exits.

Go moves goroutine stacks, so uretprobes (which overwrite the return address on
the stack) crash Go programs (DESIGN §5). A function's exits are probed instead
by putting a plain uprobe on each of its RET instructions, found here with
capstone. Go does not embed data in amd64 text, so a linear sweep of
[entry, end) decodes every instruction; arm64 instructions are fixed 4 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import capstone

from .elfimage import GoBinaryError

__all__ = ["RET_MNEMONICS", "ArchDisasm", "ret_offsets"]


@dataclass(frozen=True)
class ArchDisasm:
    """How to disassemble one GOARCH and which mnemonics end a function."""

    cs_arch: int
    cs_mode: int
    rets: frozenset[str]


def _arm64_arch() -> int:
    # capstone 5 calls it ARM64, capstone 6 AARCH64.
    return getattr(capstone, "CS_ARCH_ARM64", None) or capstone.CS_ARCH_AARCH64


RET_MNEMONICS: dict[str, frozenset[str]] = {
    "amd64": frozenset({"ret", "retq"}),  # c3, and c2 imm16 (never emitted by Go)
    "arm64": frozenset({"ret"}),  # d65f03c0 (ret x30)
}


def _arch(goarch: str) -> ArchDisasm:
    if goarch == "amd64":
        return ArchDisasm(capstone.CS_ARCH_X86, capstone.CS_MODE_64, RET_MNEMONICS["amd64"])
    if goarch == "arm64":
        return ArchDisasm(_arm64_arch(), capstone.CS_MODE_ARM, RET_MNEMONICS["arm64"])
    raise GoBinaryError(f"disassembly of {goarch} is not supported (amd64, arm64 only)")


def ret_offsets(code: bytes, goarch: str) -> list[int]:
    """Offsets (from the start of `code`) of every return instruction in it.

    Undecodable bytes (padding, a corrupt file) are skipped rather than ending
    the sweep, so a later RET is still found.
    """
    a = _arch(goarch)
    md = capstone.Cs(a.cs_arch, a.cs_mode)
    md.skipdata = True
    out = []
    for addr, _size, mnemonic, _ops in md.disasm_lite(code, 0):
        if mnemonic in a.rets:
            out.append(addr)
    return out
