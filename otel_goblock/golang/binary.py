"""`GoBinary`: one place to ask a Go executable everything the probes need.

Opening a binary parses build info and the function table eagerly (both are
fast and needed by every probe family); DWARF, wait reasons and disassembly are
computed on first use. Instances are cached per (path, mtime, size, build id)
so the receiver can ask again for every new process of the same executable.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cached_property

from .abi import ArgLocation, assign_registers
from .buildinfo import BuildInfo, read_buildinfo
from .disasm import ret_offsets
from .dwarf import DwarfTypes, StructLayout
from .elfimage import ElfImage, GoBinaryError, guard
from .offsets import RuntimeLayout, runtime_layout
from .symbols import Function, SymbolTable
from .waitreasons import WaitReasons, wait_reasons

__all__ = ["REGISTERS", "GoBinary", "ProbePoint", "Registers", "open_go_binary"]


@dataclass(frozen=True)
class Registers:
    """Go's register ABI (ABIInternal) for one GOARCH, as pt_regs field names.

    `g` holds the current goroutine (on system-stack functions it is g0: use
    the function's gp argument instead); `args` are integer arguments and
    results in order.
    """

    g: str
    args: tuple[str, ...]
    sp: str
    fp: str


REGISTERS: dict[str, Registers] = {
    "amd64": Registers(
        g="r14",
        args=("ax", "bx", "cx", "di", "si", "r8", "r9", "r10", "r11"),
        sp="sp",
        fp="bp",
    ),
    "arm64": Registers(
        g="regs[28]",
        args=tuple(f"regs[{i}]" for i in range(16)),
        sp="sp",
        fp="regs[29]",
    ),
}


@dataclass(frozen=True)
class ProbePoint:
    """Where to attach one uprobe: symbol name, vaddr (BCC `addr=`), file offset.

    BCC: `attach_uprobe(name=path, addr=vaddr)` (it converts vaddr to a file
    offset itself; `sym=` only works while `.symtab` exists). tracefs
    `uprobe_events` / perf_event_open: `path:file_offset`.
    """

    function: str
    vaddr: int
    file_offset: int
    kind: str  # "entry" or "ret"


class GoBinary:
    """A Go ELF executable: version, modules, functions, layouts, probe points."""

    def __init__(self, path: str, image: ElfImage | None = None) -> None:
        self.path = path
        self.image = image or ElfImage.open(path)
        self.arch = self.image.arch
        self.build_id = self.image.build_id()
        self.buildinfo: BuildInfo = read_buildinfo(self.image)
        self.symbols = SymbolTable(self.image)
        self.dwarf_error: str | None = None

    # -- identity -------------------------------------------------------------

    @property
    def go_version(self) -> tuple[int, int, int] | None:
        return self.buildinfo.version_tuple

    @property
    def stripped(self) -> bool:
        """True when `.symtab` or DWARF is missing (built with -s and/or -w)."""
        return self.symbols.source != "symtab" or not self.dwarf.available

    @property
    def registers(self) -> Registers:
        try:
            return REGISTERS[self.arch]
        except KeyError:
            raise GoBinaryError(f"{self.path}: no register map for {self.arch}") from None

    # -- lazily computed --------------------------------------------------------

    @cached_property
    def dwarf(self) -> DwarfTypes:
        """Lazy: a binary whose DWARF cannot even be loaded behaves as stripped."""
        try:
            return DwarfTypes(self.image)
        except GoBinaryError as e:
            self.dwarf_error = str(e)
            return DwarfTypes(self.image, load=False)

    @cached_property
    def wait_reasons(self) -> WaitReasons:
        return wait_reasons(self.image, self.symbols, self.go_version)

    @cached_property
    def runtime_layout(self) -> RuntimeLayout:
        return runtime_layout(self)

    # -- questions the probes ask -------------------------------------------

    def function(self, name: str) -> Function:
        """A function by symbol name; GoBinaryError if absent (inlined, not linked)."""
        return self.symbols.require(name)

    def struct(self, type_name: str) -> StructLayout | None:
        return self.dwarf.struct(type_name)

    def field_offset(self, type_name: str, field_path: str) -> int | None:
        return self.dwarf.offset(type_name, field_path)

    def arg_locations(self, name: str) -> dict[str, ArgLocation] | None:
        """Register(s) of each parameter and result of a function, from DWARF and
        the ABIInternal rules; None without DWARF. Results are keyed '~r0', ...
        (or their names), valid at the RET probes."""
        if self.arch not in ("amd64", "arm64"):
            return None
        params = self.dwarf.function_params(name)
        if params is None:
            return None
        return {loc.name: loc for loc in assign_registers(params, self.arch)}

    def entry_probe(self, name: str) -> ProbePoint:
        f = self.function(name)
        return ProbePoint(f.name, f.entry, f.file_offset, "entry")

    def ret_probes(self, name: str) -> list[ProbePoint]:
        """One probe per RET instruction of the function (never uretprobes on Go)."""
        f = self.function(name)
        with guard(f"{self.path}: disassembling {name}"):
            code = self.image.read(f.entry, f.size)
            offs = ret_offsets(code, self.arch)
        return [ProbePoint(f.name, f.entry + o, f.file_offset + o, "ret") for o in offs]

    def module_version(self, module_path: str) -> str | None:
        """Version of a linked-in module (replacements applied), e.g. grpc-go's."""
        m = self.buildinfo.dep(module_path)
        return m.version if m is not None else None

    def __repr__(self) -> str:
        return f"GoBinary({self.path!r}, {self.buildinfo.go_version}, {self.arch})"


_cache: dict[tuple[str, int, int, int, int], GoBinary] = {}
_cache_lock = threading.Lock()
_CACHE_MAX = 16  # each entry holds its file in memory (a large Go service: 20-100 MB)


def open_go_binary(path: str) -> GoBinary:
    """A cached GoBinary for `path` (e.g. /proc/<pid>/exe resolved).

    The key is (realpath, device, inode, mtime, size): cheap to compute with one
    stat, and a rebuilt binary changes at least one of them. The build id is
    compared on a hit as well, for files rewritten in place within the mtime
    granularity.
    """
    real = os.path.realpath(path)
    if not os.path.exists(real):
        # /proc/<pid>/exe of a binary replaced on disk resolves to "... (deleted)";
        # the link itself still opens the running file (and uprobes attach to it).
        real = path
    try:
        st = os.stat(real)
    except OSError as e:
        raise GoBinaryError(f"{path}: cannot stat: {e}") from e
    key = (real, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        bid = _build_id_of(real)
        if bid is None or bid == hit.build_id:
            return hit
    gb = GoBinary(real)
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.pop(next(iter(_cache)))
        _cache[key] = gb
    return gb


def _build_id_of(path: str) -> str | None:
    """The Go build id without loading the whole file (the linker puts its note
    in the first page); None when it is not there, and the stat key decides."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    # Note header: namesz=4, descsz, type=4 (GO BUILDID), then the name "Go\0\0".
    j = head.find(b"\x04\x00\x00\x00Go\x00\x00")
    if j < 8 or head[j - 8 : j - 4] != b"\x04\x00\x00\x00":
        return None
    descsz = int.from_bytes(head[j - 4 : j], "little")
    return head[j + 8 : j + 8 + descsz].decode("ascii", errors="replace")


def clear_cache() -> None:
    """Forget every cached binary (tests; a receiver reload)."""
    with _cache_lock:
        _cache.clear()
