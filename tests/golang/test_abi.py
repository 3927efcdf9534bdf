"""Argument registers from DWARF + Go's ABIInternal rules, versus DESIGN §5/§6."""

from __future__ import annotations

from otel_goblock.golang import GoBinary
from otel_goblock.golang.abi import assign_registers
from otel_goblock.golang.dwarf import Param

from .conftest import Built, build

T = "google.golang.org/grpc/internal/transport"


def _regs(gb: GoBinary, func: str) -> dict[str, tuple[str, ...] | None]:
    locs = gb.arg_locations(func)
    assert locs is not None, func
    return {k: v.registers for k, v in locs.items()}


def test_runtime_arguments_match_design(grpc_dwarf: Built) -> None:
    gb = GoBinary(str(grpc_dwarf.path))
    assert _regs(gb, "runtime.gopark")["reason"] == ("cx",)  # DESIGN §5: reason in CX
    assert _regs(gb, "runtime.ready")["gp"] == ("ax",)
    assert _regs(gb, "runtime.execute")["gp"] == ("ax",)
    assert _regs(gb, "runtime.gcAssistAlloc")["gp"] == ("ax",)
    assert _regs(gb, "runtime.newproc1")["~r0"] == ("ax",)  # returns the new g in AX
    assert _regs(gb, "runtime.stopTheWorldWithSema")["reason"] == ("ax",)


def test_grpc_arguments(grpc_dwarf: Built) -> None:
    gb = GoBinary(str(grpc_dwarf.path))
    goaway = _regs(gb, f"{T}.(*http2Client).handleGoAway")
    assert goaway["t"] == ("ax",) and goaway["f"] == ("bx",)
    assert goaway["~r0"] == ("ax", "bx")  # error: an interface, two words
    write = _regs(gb, f"{T}.(*http2Client).write")
    assert write["hdr"] == ("cx", "di", "si")  # a slice takes three registers


def test_otel_span_end_receiver(otel_dwarf: Built) -> None:
    gb = GoBinary(str(otel_dwarf.path))
    regs = _regs(gb, "go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).End")
    assert next(iter(regs.values())) == ("ax",)  # DESIGN §5: receiver pointer in AX


def test_arm64_registers(toolchain: str) -> None:
    gb = GoBinary(str(build(toolchain, "basic", stripped=False, goarch="arm64").path))
    assert _regs(gb, "runtime.gopark")["reason"] == ("regs[2]",)
    assert _regs(gb, "runtime.newproc1")["~r0"] == ("regs[0]",)


def test_stripped_has_no_arg_locations(otel_stripped: Built) -> None:
    assert GoBinary(str(otel_stripped.path)).arg_locations("runtime.gopark") is None


def test_assignment_rules() -> None:
    """The ABI's own cases: a value that does not fit goes to the stack whole and
    later smaller values still take registers; floats count separately; results
    restart at the first register; arrays longer than one are never in registers."""

    def p(name: str, slots: str | None, result: bool = False) -> Param:
        return Param(name, "t", None, result, slots)

    params = [
        p("a", "iiiiiii"),  # 7 of 9
        p("s", "iii"),  # needs 3, 2 left: stack
        p("x", "f"),
        p("b", "ii"),  # still fits: the last two
        p("arr", None),
        p("z", ""),
        p("r", "i", result=True),
    ]
    got = {loc.name: loc.registers for loc in assign_registers(params, "amd64")}
    assert got["a"] == ("ax", "bx", "cx", "di", "si", "r8", "r9")
    assert got["s"] is None
    assert got["x"] == ("x0",)
    assert got["b"] == ("r10", "r11")
    assert got["arr"] is None and got["z"] == ()
    assert got["r"] == ("ax",)
