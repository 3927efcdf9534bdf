"""Go runtime uprobes: where to attach them in one binary, and turning their records
into Events (DESIGN §5; the BPF side is bpf/goruntime.bpf.c).

A `GoProbePlan` is computed once per binary (cached by path, size, mtime): function
entries, RET addresses for function exits (never uretprobes on Go), struct offsets from
DWARF, and the binary's own wait-reason and stop-the-world-reason tables. Attaching is
per pid, so probes only fire in target processes.
"""

from __future__ import annotations

import contextlib
import ctypes as ct
import logging
import os
from dataclasses import dataclass, field
from typing import Any

import capstone

from otel_goblock.golang.dwarf import DwarfTypes
from otel_goblock.golang.elfimage import ElfImage, GoBinaryError
from otel_goblock.golang.symbols import SymbolTable

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

GO_PARK, GO_STW, GO_ASSIST, GO_LINEAGE, GO_SPAN_END, GO_GC_START = 1, 2, 3, 4, 5, 6
# fallback offsets of runtime.g.goid by Go minor version (DESIGN §5), for stripped binaries
GOID_OFFSET_BY_MINOR = {21: 152, 22: 152, 23: 160, 24: 160, 25: 152, 26: 152}


class GoEvent(ct.Structure):
    """struct go_event of bpf/goruntime.bpf.c (tests check the size against BCC's)."""

    _fields_ = [
        ("start_ns", ct.c_uint64),
        ("end_ns", ct.c_uint64),
        ("goid", ct.c_uint64),
        ("aux", ct.c_uint64),
        ("pid", ct.c_uint32),
        ("tid", ct.c_uint32),
        ("kind", ct.c_uint8),
        ("reason", ct.c_uint8),
        ("flags", ct.c_uint8),
        ("_pad", ct.c_uint8 * 5),
        ("trace_id", ct.c_uint8 * 16),
        ("span_id", ct.c_uint8 * 8),
    ]


@dataclass
class GoProbePlan:
    path: str
    go_version: str
    arch: str
    goid_offset: int
    span_ctx_offset: int  # 0: span markers unavailable
    entries: dict[str, int] = field(default_factory=dict)  # function → vaddr
    rets: dict[str, list[int]] = field(default_factory=dict)  # function → RET vaddrs
    wait_reasons: dict[int, str] = field(default_factory=dict)
    stw_reasons: dict[int, str] = field(default_factory=dict)
    degraded: list[str] = field(default_factory=list)  # what is lost, said once in the log

    def points(self, families: set[str]) -> list[tuple[str, str, int]]:
        """(function, BPF program, vaddr) for every probe of the enabled families."""
        out = []
        for fam in families:
            for func, prog, at in FAMILIES[fam]:
                if func not in self.entries:
                    continue
                addrs = self.rets.get(func, []) if at == "ret" else [self.entries[func]]
                out.extend((func, prog, a) for a in addrs)
        return out


def _ret_addrs(image: ElfImage, entry: int, end: int) -> list[int]:
    """Addresses of RET instructions in [entry, end), by linear disassembly."""
    code = image.read(entry, end - entry)
    if image.arch == "arm64":
        md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
        return [i.address for i in md.disasm(code, entry) if i.mnemonic == "ret"]
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.skipdata = True
    return [i.address for i in md.disasm(code, entry) if i.mnemonic == "ret"]


def _string_table(image: ElfImage, syms: SymbolTable, name: str) -> dict[int, str]:
    """A Go `[N]string` table such as runtime.waitReasonStrings, read from the binary."""
    sym = syms.data_symbol(name)
    if sym is None or sym.size == 0:
        return {}
    out = {}
    step = 2 * image.ptr_size
    for i in range(sym.size // step):
        try:
            out[i] = image.read_go_string(sym.addr + i * step)
        except GoBinaryError:
            break
    return out


_PLANS: dict[tuple[str, int, float], GoProbePlan] = {}


def plan_for(path: str) -> GoProbePlan:
    """Probe plan for one Go binary; raises GoBinaryError naming what is missing."""
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime)
    if key in _PLANS:
        return _PLANS[key]
    image = ElfImage.open(path)
    from otel_goblock.golang.buildinfo import read_buildinfo

    info = read_buildinfo(image)
    syms = SymbolTable(image)
    dwarf = DwarfTypes(image)
    degraded: list[str] = []
    goid = dwarf.offset("runtime.g", "goid") if dwarf.available else None
    if goid is None:
        vt = info.version_tuple
        goid = GOID_OFFSET_BY_MINOR.get(vt[1]) if vt else None
        if goid is None:
            raise GoBinaryError(
                f"{path}: no DWARF and Go {info.go_version} is not in the offset table: "
                "rebuild without -ldflags=-w to observe its goroutines"
            )
        degraded.append(f"runtime offsets from the Go {info.go_version} table (no DWARF)")
    span_ctx = 0
    if syms.function(SPAN_END) is not None:
        off = dwarf.offset(RECORDING_SPAN, "spanContext") if dwarf.available else None
        if off is None:
            degraded.append("span markers off: they need the OTel SDK's DWARF (binary stripped)")
        else:
            span_ctx = off
    plan = GoProbePlan(path, info.go_version, image.arch, goid, span_ctx, degraded=degraded)
    for funcs in FAMILIES.values():
        for func, _prog, at in funcs:
            f = syms.function(func)
            if f is None:
                continue
            plan.entries[func] = f.entry
            if at == "ret":
                plan.rets[func] = _ret_addrs(image, f.entry, f.end)
    if not span_ctx:
        plan.entries.pop(SPAN_END, None)
    plan.wait_reasons = _string_table(image, syms, "runtime.waitReasonStrings")
    plan.stw_reasons = _string_table(image, syms, "runtime.stwReasonStrings")
    if not plan.wait_reasons:
        degraded.append("wait reasons shown as numbers (runtime.waitReasonStrings not found)")
    _PLANS[key] = plan
    return plan


class GoRuntimeProbes:
    """Attaches the runtime probe families of one BCC module to target processes."""

    def __init__(self, bpf: Any, families: set[str], park_threshold_ns: int) -> None:
        self._bpf = bpf
        self.families = families
        self._attached: dict[int, tuple[GoProbePlan, list[int]]] = {}
        self._sys_enter = False
        bpf["config"][ct.c_int(3)] = ct.c_uint64(park_threshold_ns)
        if "parks" in families:
            bpf.attach_tracepoint(tp="raw_syscalls:sys_enter", fn_name="go_sys_enter")
            self._sys_enter = True

    def attach(self, pid: int, exe: str) -> GoProbePlan:
        plan = plan_for(exe)
        offsets = self._bpf["go_offsets"]
        key = offsets.Key(pid)
        val = offsets.Leaf(plan.goid_offset, plan.span_ctx_offset)
        offsets[key] = val
        done: list[int] = []
        try:
            for _func, prog, addr in plan.points(self.families):
                self._bpf.attach_uprobe(name=exe, addr=addr, fn_name=prog, pid=pid)
                done.append(addr)
        except Exception:
            self._detach_addrs(pid, exe, done)
            del offsets[key]
            raise
        self._attached[pid] = (plan, done)
        for note in plan.degraded:
            log.warning("degraded Go runtime probes: %s", note, extra={"pid": pid, "exe": exe})
        return plan

    def _detach_addrs(self, pid: int, exe: str, addrs: list[int]) -> None:
        for addr in addrs:
            try:
                self._bpf.detach_uprobe(name=exe, addr=addr, pid=pid)
            except Exception as e:  # the process may be gone: its probes went with it
                log.debug("detach_uprobe failed", extra={"pid": pid, "error": str(e)})

    def detach(self, pid: int) -> None:
        entry = self._attached.pop(pid, None)
        if entry is None:
            return
        plan, addrs = entry
        self._detach_addrs(pid, plan.path, addrs)
        offsets = self._bpf["go_offsets"]
        with contextlib.suppress(KeyError):
            del offsets[offsets.Key(pid)]

    def close(self) -> None:
        for pid in list(self._attached):
            self.detach(pid)
        if self._sys_enter:
            self._bpf.detach_tracepoint(tp="raw_syscalls:sys_enter")
            self._sys_enter = False

    def plan(self, pid: int) -> GoProbePlan | None:
        entry = self._attached.get(pid)
        return entry[0] if entry else None
