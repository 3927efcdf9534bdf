"""Goroutine wait-reason numbers -> strings, read from the binary when possible.

`gopark(..., reason, ...)` passes a `waitReason` byte whose numbering changes
between releases (1.24 and 1.25 inserted values, 1.26 reordered the list). The
truth is the binary's own `runtime.waitReasonStrings` array ([N]string, each
entry a (pointer, length) header into rodata):

1. with `.symtab`: the `runtime.waitReasonStrings` data symbol gives address
   and size;
2. stripped: the array's address and length are recovered from the code of
   `runtime.waitReason.String` (in the pclntab), which bounds-checks
   `w < len(waitReasonStrings)` and then indexes the array;
3. else a per-release table (1.21-1.27) below.

Tables 1.26 and 1.27 were read from binaries built here with those toolchains.
1.21-1.25 were derived from snapshots of src/runtime/runtime2.go found through
the public code index (the const lists ending at StoppingTheWorld [1.21],
Coroutine [1.22], GCWeakToStrongWait [1.23], synctest "(synctest)" strings with
SyncWaitGroupWait inserted at 24 [1.24]; 1.25 is the 1.26 source's
waitReasonStrings literal order, which 1.26's reordering of the consts left as
it was, with "(durable)" synctest strings). Those five are cross-checked only
against each other and the 1.26 binary, not against release binaries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import capstone

from .elfimage import ElfImage, GoBinaryError, guard
from .symbols import SymbolTable

__all__ = [
    "WAIT_REASON_TABLES",
    "WaitReasons",
    "read_wait_reasons",
    "table_for_version",
    "wait_reasons",
]

_MAX_REASONS = 256  # waitReason is a uint8
_MAX_REASON_LEN = 128

_BASE_121 = (
    "",
    "GC assist marking",
    "IO wait",
    "chan receive (nil chan)",
    "chan send (nil chan)",
    "dumping heap",
    "garbage collection",
    "garbage collection scan",
    "panicwait",
    "select",
    "select (no cases)",
    "GC assist wait",
    "GC sweep wait",
    "GC scavenge wait",
    "chan receive",
    "chan send",
    "finalizer wait",
    "force gc (idle)",
    "semacquire",
    "sleep",
    "sync.Cond.Wait",
    "sync.Mutex.Lock",
    "sync.RWMutex.RLock",
    "sync.RWMutex.Lock",
    "trace reader (blocked)",
    "wait for GC cycle",
    "GC worker (idle)",
    "GC worker (active)",
    "preempted",
    "debug call",
    "GC mark termination",
    "stopping the world",
)
_T121 = _BASE_121
_T122 = (
    *_T121,
    "flushing proc caches",
    "trace goroutine status",
    "trace proc status",
    "page trace flush",
    "coroutine",
)
_T123 = (*_T122, "GC weak to strong wait")
_T124 = (
    *_T123[:24],
    "sync.WaitGroup.Wait",  # inserted at 24: everything after shifts by one
    *_T123[24:],
    "synctest.Run",
    "synctest.Wait",
    "chan receive (synctest)",
    "chan send (synctest)",
    "select (synctest)",
)
_T125 = (
    *_T124[:18],
    "GOMAXPROCS updater (idle)",  # inserted after "force gc (idle)"
    *_T124[18:39],
    "synctest.Run",
    "synctest.Wait",
    "chan receive (durable)",
    "chan send (durable)",
    "select (durable)",
    "sync.WaitGroup.Wait (durable)",
    "cleanup wait",
)
# Read from runtime.waitReasonStrings of go1.26.8 and go1.27.3 binaries.
_T126 = (
    "",
    "GC assist marking",
    "IO wait",
    "dumping heap",
    "garbage collection",
    "garbage collection scan",
    "panicwait",
    "GC assist wait",
    "GC sweep wait",
    "GC scavenge wait",
    "finalizer wait",
    "force gc (idle)",
    "GOMAXPROCS updater (idle)",
    "semacquire",
    "sleep",
    "chan receive (nil chan)",
    "chan send (nil chan)",
    "select (no cases)",
    "select",
    "chan receive",
    "chan send",
    "sync.Cond.Wait",
    "sync.Mutex.Lock",
    "sync.RWMutex.RLock",
    "sync.RWMutex.Lock",
    "sync.WaitGroup.Wait",
    "trace reader (blocked)",
    "wait for GC cycle",
    "GC worker (idle)",
    "GC worker (active)",
    "preempted",
    "debug call",
    "GC mark termination",
    "stopping the world",
    "flushing proc caches",
    "trace goroutine status",
    "trace proc status",
    "page trace flush",
    "coroutine",
    "GC weak to strong wait",
    "synctest.Run",
    "synctest.Wait",
    "chan receive (durable)",
    "chan send (durable)",
    "select (durable)",
    "sync.WaitGroup.Wait (durable)",
    "cleanup wait",
)
_T127 = _T126

WAIT_REASON_TABLES: dict[tuple[int, int], tuple[str, ...]] = {
    (1, 21): _T121,
    (1, 22): _T122,
    (1, 23): _T123,
    (1, 24): _T124,
    (1, 25): _T125,
    (1, 26): _T126,
    (1, 27): _T127,
}


@dataclass(frozen=True)
class WaitReasons:
    """The number -> string map and where it came from.

    source: 'symtab' (the data symbol), 'code' (recovered from
    runtime.waitReason.String), 'table' (per-release fallback) or 'none'.
    """

    names: dict[int, str]
    source: str

    def name(self, reason: int) -> str:
        return self.names.get(reason, f"unknown wait reason {reason}")


def table_for_version(version: tuple[int, int, int] | None) -> dict[int, str] | None:
    """The built-in table for a Go release (major, minor, patch), None if unknown."""
    if version is None:
        return None
    t = WAIT_REASON_TABLES.get(version[:2])
    return dict(enumerate(t)) if t is not None else None


def _read_array(image: ElfImage, addr: int, count: int) -> dict[int, str]:
    ps = image.ptr_size
    out: dict[int, str] = {}
    for i in range(count):
        s = image.read_go_string(addr + 2 * ps * i, _MAX_REASON_LEN)
        if not s.isprintable():
            raise GoBinaryError(f"{image.path}: waitReasonStrings[{i}] is not text")
        out[i] = s
    if out.get(0) != "":
        raise GoBinaryError(f"{image.path}: waitReasonStrings[0] is not empty")
    return out


_RIP_REL = re.compile(r"\[rip ([+-]) (0x[0-9a-f]+|\d+)\]")
_IMM = re.compile(r"#?(0x[0-9a-f]+|\d+)$")


def _from_code(image: ElfImage, symbols: SymbolTable) -> dict[int, str] | None:
    """Recover (address, length) of the array from runtime.waitReason.String.

    amd64: `cmp al, N` then `lea rdx, [rip+X]` (the array); arm64: `cmp w0, #N`
    then `adrp`/`add` (untested here). Each candidate address is validated by
    decoding it as N Go strings with an empty entry 0.
    """
    fn = symbols.function("runtime.waitReason.String")
    if fn is None or fn.size <= 0 or fn.size > 4096:
        return None
    code = image.read(fn.entry, fn.size)
    count = None
    addrs: list[int] = []
    if image.arch == "amd64":
        md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
        for addr, size, mnem, ops in md.disasm_lite(code, fn.entry):
            if mnem == "cmp" and count is None and ops.startswith(("al,", "eax,", "ax,")):
                m = _IMM.search(ops.replace(" ", ""))
                if m:
                    count = int(m.group(1), 0)
            elif mnem == "lea":
                m = _RIP_REL.search(ops)
                if m:
                    disp = int(m.group(2), 0)
                    addrs.append(addr + size + (disp if m.group(1) == "+" else -disp))
    elif image.arch == "arm64":
        arch = getattr(capstone, "CS_ARCH_ARM64", None) or capstone.CS_ARCH_AARCH64
        md = capstone.Cs(arch, capstone.CS_MODE_ARM)
        page: dict[str, int] = {}
        for _addr, _size, mnem, ops in md.disasm_lite(code, fn.entry):
            parts = [p.strip() for p in ops.split(",")]
            if mnem == "cmp" and count is None and len(parts) == 2:
                m = _IMM.search(parts[1])
                if m:
                    count = int(m.group(1), 0)
            elif mnem == "adrp" and len(parts) == 2:
                page[parts[0]] = int(parts[1].lstrip("#"), 0)
            elif mnem == "add" and len(parts) == 3 and parts[1] in page:
                m = _IMM.search(parts[2])
                if m:
                    addrs.append(page[parts[1]] + int(m.group(1), 0))
    if count is None or not 0 < count < _MAX_REASONS:
        return None
    for a in addrs:
        try:
            return _read_array(image, a, count)
        except GoBinaryError:
            continue  # the other LEA: the "unknown wait reason" string
    return None


def read_wait_reasons(image: ElfImage, symbols: SymbolTable) -> WaitReasons | None:
    """The binary's own table (from .symtab, else from code), None if not found."""
    with guard(f"{image.path}: reading runtime.waitReasonStrings"):
        sym = symbols.data_symbol("runtime.waitReasonStrings")
        if sym is not None and sym.size:
            count = sym.size // (2 * image.ptr_size)
            if 0 < count <= _MAX_REASONS:
                return WaitReasons(_read_array(image, sym.addr, count), "symtab")
        names = _from_code(image, symbols)
        if names is not None:
            return WaitReasons(names, "code")
    return None


def wait_reasons(
    image: ElfImage, symbols: SymbolTable, version: tuple[int, int, int] | None
) -> WaitReasons:
    """The best table available: the binary's, else the release table, else empty."""
    try:
        found = read_wait_reasons(image, symbols)
    except GoBinaryError:
        found = None
    if found is not None:
        return found
    table = table_for_version(version)
    if table is not None:
        return WaitReasons(table, "table")
    return WaitReasons({}, "none")
