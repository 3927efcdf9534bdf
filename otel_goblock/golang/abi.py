"""Which registers hold a Go function's arguments and results (ABIInternal).

Probes read arguments from pt_regs; hard-coding "reason is in CX" breaks the day
a runtime or grpc-go signature changes. With DWARF, the parameter list is known,
and Go's register assignment is a fixed algorithm (internal/abi, "Go internal
ABI specification"): walk the parameters in order (receiver first); a value
takes the next integer/float registers its parts need, or, if it does not fit
in what is left (or is an array longer than one), goes entirely on the stack
and the counters are restored. Results are assigned the same way, starting
again from the first register.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dwarf import Param

__all__ = ["ABI_REGISTERS", "ArgLocation", "assign_registers"]


@dataclass(frozen=True)
class AbiRegisters:
    """Integer and float argument registers, as pt_regs field names."""

    ints: tuple[str, ...]
    floats: tuple[str, ...]


ABI_REGISTERS: dict[str, AbiRegisters] = {
    # amd64: RAX RBX RCX RDI RSI R8 R9 R10 R11; X0-X14 (X15 is the zero register)
    "amd64": AbiRegisters(
        ("ax", "bx", "cx", "di", "si", "r8", "r9", "r10", "r11"),
        tuple(f"x{i}" for i in range(15)),
    ),
    # arm64: R0-R15; F0-F15
    "arm64": AbiRegisters(
        tuple(f"regs[{i}]" for i in range(16)), tuple(f"f{i}" for i in range(16))
    ),
}


@dataclass(frozen=True)
class ArgLocation:
    """Where one parameter/result lives at entry/return: registers, or the stack."""

    name: str
    type_name: str
    is_result: bool
    registers: tuple[str, ...] | None  # None: on the stack (not read by the probes)


def assign_registers(params: list[Param], arch: str) -> list[ArgLocation]:
    """Registers of each parameter (then each result) of a function."""
    regs = ABI_REGISTERS[arch]
    out: list[ArgLocation] = []
    for want_results in (False, True):
        ni = nf = 0
        for p in params:
            if p.is_result != want_results:
                continue
            where: tuple[str, ...] | None = None
            if p.slots is not None:
                need_i, need_f = p.slots.count("i"), p.slots.count("f")
                if ni + need_i <= len(regs.ints) and nf + need_f <= len(regs.floats):
                    got: list[str] = []
                    for s in p.slots:
                        if s == "i":
                            got.append(regs.ints[ni])
                            ni += 1
                        else:
                            got.append(regs.floats[nf])
                            nf += 1
                    where = tuple(got)
            out.append(ArgLocation(p.name, p.type_name, p.is_result, where))
    return out
