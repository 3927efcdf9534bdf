"""Return-instruction offsets of a function, for uprobes on function exits.

Go moves goroutine stacks, so uretprobes (which overwrite the return address on
the stack) crash Go programs (DESIGN §5). A function's exits are probed instead
by putting a plain uprobe on each of its RET instructions, found here with
capstone. Go does not embed data in amd64 text, so a linear sweep of
[entry, end) decodes every instruction; arm64 instructions are fixed 4 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import capstone

if TYPE_CHECKING:
    from .binary import GoBinary

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


def stack_check_branch(binary: GoBinary, func: str) -> int | None:
    """vaddr of the `jbe` of the function's stack-growth check (amd64), or None.

    A uprobe on a function's first instruction (`cmp rsp, [r14+0x10]`) is executed out
    of line: two traps. The `jbe runtime.morestack` right after it is a branch the
    kernel emulates: one trap, measured ~3x cheaper here (benchmarks/grpc_probe_cost.py).
    The argument registers are untouched at that point. When the branch will be taken
    (CF or ZF set: the stack must grow) the function runs again from its entry after
    morestack, so the BPF side ignores that hit (GRPC_O_AT_STACK_CHECK).
    """
    if binary.arch != "amd64":
        return None
    f = binary.function(func)
    code = binary.image.read(f.entry, min(f.size, 32))
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    insns = list(md.disasm_lite(code, f.entry, 3))
    for i, (_addr, _size, mnem, ops) in enumerate(insns):
        if mnem == "cmp" and "r14 + 0x10" in ops:
            nxt = insns[i + 1] if i + 1 < len(insns) else None
            return nxt[0] if nxt is not None and nxt[2] == "jbe" else None
    return None


def call_after_field_store(binary: GoBinary, func: str, field_off: int, callee: str) -> int | None:
    """vaddr of a `call callee` made with rax = the struct whose field at `field_off` was
    just stored (amd64), or None.

    Why: a uprobe on a RET is executed out of line (two traps, ~15 µs per hit on this
    project's VMs), a `call` is emulated (one trap, ~0.5 µs). runtime.newproc1's result is
    the new g; recent Go (1.26, 1.27) does `newg.goid = …; casgstatus(newg, …)`: at that call
    rax is the new g with its goid set: the same register a RET probe reads. Only the
    straight-line case is accepted: the call within a few instructions of the store, no
    branch in between, rax set from the stored-to register and not written after.
    """
    if binary.arch != "amd64":
        return None
    f = binary.function(func)
    target = binary.symbols.function(callee)
    if target is None:
        return None
    code = binary.image.read(f.entry, f.size)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    insns = list(md.disasm_lite(code, f.entry))
    store = f"+ {hex(field_off)}], "
    for i, (_addr, _size, mnem, ops) in enumerate(insns):
        if mnem != "mov" or not ops.startswith("qword ptr [") or store not in ops:
            continue
        base = ops[len("qword ptr [") : ops.index(" + ")]
        rax_is_base = base == "rax"
        for addr, _s, m, o in insns[i + 1 : i + 8]:
            if m == "call":
                ok = rax_is_base and o == hex(target.entry)
                return addr if ok else None
            if m.startswith("j") or m in ("ret", "syscall"):
                return None
            dst = o.split(",", 1)[0].strip()
            if dst in ("rax", "eax", "ax", "al"):
                rax_is_base = m == "mov" and o == f"rax, {base}"
            elif dst == base:
                return None  # the register no longer names the struct
        return None
    return None
