"""Go runtime uprobes: where to attach them in one binary, and turning their records
into Events (DESIGN §5; the BPF side is bpf/goruntime.bpf.c).

A `GoProbePlan` is computed once per binary (otel_goblock.golang does the reading):
function entries, RET addresses for function exits (never uretprobes on Go), struct
offsets from DWARF or the version table, and the binary's wait-reason and
stop-the-world-reason tables. Attaching is
per pid, so probes only fire in target processes.
"""

from __future__ import annotations

import contextlib
import ctypes as ct
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from otel_goblock.receivers.ebpf.program import CFG_ASSIST_THRESHOLD_NS, CFG_PARK_THRESHOLD_NS

from otel_goblock.golang.binary import GoBinary, open_go_binary
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
            plan.entries[func] = binary.entry_probe(func).file_offset
            if at == "ret":
                plan.rets[func] = [p.file_offset for p in binary.ret_probes(func)]
    if not span_ctx:
        plan.entries.pop(SPAN_END, None)
    plan.wait_reasons = dict(binary.wait_reasons.names)
    plan.stw_reasons = _string_table(binary, "runtime.stwReasonStrings")
    _PLANS[id(binary)] = (binary, plan)
    return plan


def attach_uprobe_at(bpf: Any, path: bytes, offset: int, fn_name: str, pid: int) -> bytes:
    """BCC's attach_uprobe at a known file offset, returning the event name to detach.

    Why not `bpf.attach_uprobe(addr=...)`: it resolves the address through the binary's
    ELF symbol table on every call (and so does detach_uprobe), about 0.1 s per probe on a
    Go binary; the offsets here come from otel_goblock.golang, computed once per binary.
    The steps are the ones BCC 0.26's attach_uprobe takes after its resolution."""
    from bcc.libbcc import lib  # type: ignore[import-not-found]

    bpf._check_probe_quota(1)
    fn = bpf.load_func(fn_name.encode(), bpf.KPROBE)
    ev = bpf._get_uprobe_evname(b"p", path, offset, pid)
    fd = lib.bpf_attach_uprobe(fn.fd, 0, ev, path, offset, pid)
    if fd < 0:
        raise OSError(f"cannot attach uprobe {fn_name} at {path.decode()}+{offset:#x} pid {pid}")
    bpf._add_uprobe_fd(ev, fd)
    return ev


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
        # binary realpath → (plan, uprobe event names, target pids running it)
        self._binaries: dict[str, tuple[GoProbePlan, list[bytes], set[int]]] = {}
        self._pids: dict[int, str] = {}  # target pid → binary realpath
        self._idle: dict[str, float] = {}  # binaries without targets → since (monotonic)
        self._said: set[str] = set()  # binaries whose degraded note was logged
        self._sys_enter = False
        bpf["config"][ct.c_int(CFG_PARK_THRESHOLD_NS)] = ct.c_uint64(park_threshold_ns)
        bpf["config"][ct.c_int(CFG_ASSIST_THRESHOLD_NS)] = ct.c_uint64(assist_threshold_ns)
        if "parks" in families and own_sys_enter:
            bpf.attach_tracepoint(tp="raw_syscalls:sys_enter", fn_name="go_sys_enter")
            self._sys_enter = True

    def attach(self, pid: int, exe: str) -> GoProbePlan:
        """Observe `pid` (idempotent). Uprobes go on the binary (its inode), once for all
        of its target processes; the BPF programs act only for pids in `go_offsets`. So a
        restart or a second replica costs one map write, not a new set of uprobes, whose
        removal costs ~0.15 s each in the kernel."""
        if pid in self._pids:
            return self._binaries[self._pids[pid]][0]
        path = os.path.realpath(exe)
        entry = self._binaries.get(path)
        if entry is None:
            plan = plan_for(exe)
            events: list[bytes] = []
            try:
                for _func, prog, offset in plan.points(self.families):
                    events.append(attach_uprobe_at(self._bpf, path.encode(), offset, prog, -1))
            except Exception:
                self._detach_events(events)
                raise
            entry = self._binaries[path] = (plan, events, set())
            if path not in self._said:
                self._said.add(path)
                for note in plan.degraded:
                    log.warning("degraded Go runtime probes: %s", note, extra={"pid": pid})
        plan = entry[0]
        offsets = self._bpf["go_offsets"]
        offsets[offsets.Key(pid)] = offsets.Leaf(plan.goid_offset, plan.span_ctx_offset)
        entry[2].add(pid)
        self._idle.pop(path, None)
        self._pids[pid] = path
        return plan

    def _detach_events(self, events: list[bytes]) -> None:
        for ev in events:
            try:
                self._bpf.detach_uprobe_event(ev)
            except Exception as e:
                log.debug("uprobe detach failed", extra={"error": str(e)})

    def detach(self, pid: int) -> None:
        """Stop observing `pid`; the binary's uprobes go `reap_idle`'s grace period after
        its last target does."""
        path = self._pids.pop(pid, None)
        if path is None:
            return
        offsets = self._bpf["go_offsets"]
        with contextlib.suppress(KeyError):
            del offsets[offsets.Key(pid)]
        pids = self._binaries[path][2]
        pids.discard(pid)
        if not pids:
            # removing a uprobe costs ~0.15 s of kernel time each: keep a binary's probes
            # a while after its last target exits, for the restart that usually follows
            self._idle[path] = time.monotonic()

    def reap_idle(self, grace_s: float = 30.0) -> None:
        """Detach the uprobes of binaries that have had no target for `grace_s`."""
        now = time.monotonic()
        for path, since in list(self._idle.items()):
            entry = self._binaries.get(path)
            if entry is not None and entry[2]:
                del self._idle[path]  # a target came back
            elif now - since >= grace_s:
                del self._idle[path]
                if entry is not None:
                    del self._binaries[path]
                    self._detach_events(entry[1])

    def close(self) -> None:
        for pid in list(self._pids):
            self.detach(pid)
        self.reap_idle(grace_s=0.0)
        if self._sys_enter:
            self._bpf.detach_tracepoint(tp="raw_syscalls:sys_enter")
            self._sys_enter = False

    def plan(self, pid: int) -> GoProbePlan | None:
        path = self._pids.get(pid)
        return self._binaries[path][0] if path is not None else None
