"""Go runtime uprobes: where to attach them in one binary, and turning their records
into Events (DESIGN §5; the BPF side is bpf/goruntime.bpf.c).

A `GoProbePlan` is computed once per binary (otel_goblock.golang does the reading):
function entries, RET addresses for function exits (never uretprobes on Go), struct
offsets from DWARF or the version table, and the binary's wait-reason and
stop-the-world-reason tables. Attaching is
per pid, so probes only fire in target processes.
"""

from __future__ import annotations

import ctypes as ct
import logging
from dataclasses import dataclass, field
from typing import Any

from otel_goblock.receivers.ebpf.program import CFG_ASSIST_THRESHOLD_NS, CFG_PARK_THRESHOLD_NS
from otel_goblock.receivers.ebpf.uprobes import BinaryUprobes

from otel_goblock.golang.binary import GoBinary, open_go_binary
from otel_goblock.golang.disasm import call_after_field_store, stack_check_branch
from otel_goblock.golang.elfimage import GoBinaryError

log = logging.getLogger("otel_goblock.receiver.ebpf.goruntime")

SPAN_END = "go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).End"
RECORDING_SPAN = "go.opentelemetry.io/otel/sdk/trace.recordingSpan"

# probe family → [(function, BPF program, at: "entry" | "ret")]
FAMILIES: dict[str, list[tuple[str, str, str]]] = {
    "parks": [
        ("runtime.gopark", "go_gopark", "entry"),
        ("runtime.ready", "go_ready", "entry"),
        ("runtime.goexit1", "go_goexit1", "entry"),
    ],
    "lineage": [
        ("runtime.newproc1", "go_newproc1", "entry"),
        ("runtime.newproc1", "go_newproc1_ret", "ret"),
    ],
    "gc": [
        ("runtime.gcStart", "go_gc_start", "entry"),
        ("runtime.stopTheWorldWithSema", "go_stw_start", "entry"),
        ("runtime.startTheWorldWithSema", "go_stw_end", "entry"),
        ("runtime.gcAssistAlloc", "go_assist_start", "entry"),
        ("runtime.gcAssistAlloc", "go_assist_end", "ret"),
    ],
    "span_markers": [(SPAN_END, "go_span_end", "entry")],
}


_PLANS: dict[int, tuple[GoBinary, GoProbePlan]] = {}  # by GoBinary (itself cached per file)


@dataclass
class GoProbePlan:
    path: str
    go_version: str
    arch: str
    goid_offset: int
    span_ctx_offset: int  # 0: span markers unavailable
    # file offsets (what a uprobe is attached at): function → entry, function → its RETs
    entries: dict[str, int] = field(default_factory=dict)
    rets: dict[str, list[int]] = field(default_factory=dict)
    wait_reasons: dict[int, str] = field(default_factory=dict)
    stw_reasons: dict[int, str] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)  # what is lost, said once in the log

    def points(self, families: set[str]) -> list[tuple[str, str, int]]:
        """(function, BPF program, file offset) for every probe of the enabled families."""
        out = []
        for fam in families:
            for func, prog, at in FAMILIES[fam]:
                if func not in self.entries:
                    continue
                addrs = self.rets.get(func, []) if at == "ret" else [self.entries[func]]
                out.extend((func, prog, a) for a in addrs)
        return out


def _string_table(binary: GoBinary, name: str) -> dict[int, str]:
    """A Go `[N]string` table such as runtime.stwReasonStrings, read from the binary."""
    sym = binary.symbols.data_symbol(name)
    if sym is None or sym.size == 0:
        return {}
    out = {}
    step = 2 * binary.image.ptr_size
    for i in range(sym.size // step):
        try:
            out[i] = binary.image.read_go_string(sym.addr + i * step)
        except GoBinaryError:
            break
    return out


def plan_for(path: str) -> GoProbePlan:
    """Probe plan for one Go binary; raises GoBinaryError naming what is missing."""
    binary = open_go_binary(path)
    cached = _PLANS.get(id(binary))
    if cached is not None and cached[0] is binary:
        return cached[1]
    layout = binary.runtime_layout
    if not layout.usable:
        raise GoBinaryError(
            f"{path}: {layout.log_line(path)}: rebuild without -ldflags=-w to observe it"
        )
    span_ctx = 0
    if binary.symbols.function(SPAN_END) is not None:
        span_ctx = binary.field_offset(RECORDING_SPAN, "spanContext") or 0
    # one line says what this binary costs us (stripped: offsets from the table, no span
    # markers, no GOAWAY decoding); the receiver logs it once per binary
    degraded = [layout.log_line(path)] if layout.source != "dwarf" or layout.lost else []
    if binary.symbols.function(SPAN_END) is not None and not span_ctx and not degraded:
        degraded.append(f"{path}: span markers off: no DWARF for the OTel SDK's recordingSpan")
    plan = GoProbePlan(
        path,
        binary.buildinfo.go_version,
        binary.arch,
        layout["g.goid"],
        span_ctx,
        degraded=degraded,
    )
    for funcs in FAMILIES.values():
        for func, _prog, at in funcs:
            if binary.symbols.function(func) is None:
                continue
            # the `jbe morestack` after the stack check, not the first instruction: a
            # branch the kernel emulates (one trap) instead of an instruction executed
            # out of line (two), ~3-10x cheaper per hit (receivers/ebpf/GRPC.md). When
            # the stack must grow the function re-enters and the probe fires twice, which
            # every program here tolerates (state keyed by goroutine, markers deduped).
            jbe = stack_check_branch(binary, func)
            plan.entries[func] = (
                binary.image.vaddr_to_offset(jbe)
                if jbe is not None
                else binary.entry_probe(func).file_offset
            )
            if at == "ret":
                plan.rets[func] = _result_probes(binary, func, layout["g.goid"])
    if not span_ctx:
        plan.entries.pop(SPAN_END, None)
    plan.wait_reasons = dict(binary.wait_reasons.names)
    plan.stw_reasons = _string_table(binary, "runtime.stwReasonStrings")
    _PLANS[id(binary)] = (binary, plan)
    return plan


def _result_probes(binary: GoBinary, func: str, goid_off: int) -> list[int]:
    """File offsets where `func`'s result is in the result register: its RETs (executed
    out of line, ~15 µs a hit on this project's VMs), or for newproc1 the emulated call
    that follows `newg.goid = …` when the compiler put one there (~0.5 µs; 2 per request
    of the demo, the largest uprobe cost once the entry probes sat on their branches)."""
    if func == "runtime.newproc1":
        at = call_after_field_store(binary, func, goid_off, "runtime.casgstatus")
        if at is not None:
            return [binary.image.vaddr_to_offset(at)]
    return [p.file_offset for p in binary.ret_probes(func)]


class GoRuntimeProbes:
    """Attaches the runtime probe families of one BCC module to target processes."""

    def __init__(
        self,
        bpf: Any,
        families: set[str],
        park_threshold_ns: int,
        own_sys_enter: bool = True,
        assist_threshold_ns: int = 50_000,
    ) -> None:
        """`own_sys_enter`: attach go_sys_enter (parks end at the goroutine's next
        syscall); False when the syscalls program of the same module already does it."""
        self._bpf = bpf
        self.families = families
        self._probes: BinaryUprobes[GoProbePlan] = BinaryUprobes(bpf, "Go runtime", "go_offsets")
        self._sys_enter = False
        bpf["config"][ct.c_int(CFG_PARK_THRESHOLD_NS)] = ct.c_uint64(park_threshold_ns)
        bpf["config"][ct.c_int(CFG_ASSIST_THRESHOLD_NS)] = ct.c_uint64(assist_threshold_ns)
        if "parks" in families and own_sys_enter:
            bpf.attach_tracepoint(tp="raw_syscalls:sys_enter", fn_name="go_sys_enter")
            self._sys_enter = True

    def attach(self, pid: int, exe: str) -> GoProbePlan:
        """Observe `pid` (idempotent); uprobes go on its binary once (uprobes.py)."""
        plan = self._probes.attach(
            pid,
            exe,
            plan_for,
            lambda _path, p: [(prog, off) for _f, prog, off in p.points(self.families)],
            lambda p: p.degraded,
        )
        offsets = self._bpf["go_offsets"]
        offsets[offsets.Key(pid)] = offsets.Leaf(plan.goid_offset, plan.span_ctx_offset)
        return plan

    def detach(self, pid: int) -> None:
        self._probes.detach(pid)

    def reap_idle(self) -> None:
        self._probes.reap_idle()

    def close(self) -> None:
        self._probes.close()
        if self._sys_enter:
            self._bpf.detach_tracepoint(tp="raw_syscalls:sys_enter")
            self._sys_enter = False

    def plan(self, pid: int) -> GoProbePlan | None:
        return self._probes.plan(pid)
