"""Function symbols of a Go binary: names, entry and end addresses, file offsets.

Uprobes need an address for every probe point. `.symtab` has them when present;
`-ldflags=-s -w` removes it but keeps `.gopclntab`, the runtime's own function
table (the runtime needs it for stack traces), so stripped binaries still give
every function's name and entry. Only the Go 1.18+ layouts are read
(magic 0xFFFFFFF0 for 1.18-1.19, 0xFFFFFFF1 for 1.20+): the oldest release the
receiver supports is 1.21.
"""

from __future__ import annotations

import bisect
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from elftools.elf.sections import SymbolTableSection

from .elfimage import ElfImage, GoBinaryError, guard

__all__ = ["DataSymbol", "Function", "SymbolTable", "read_pclntab", "read_symtab"]

PCLNTAB_MAGIC_118 = 0xFFFFFFF0
PCLNTAB_MAGIC_120 = 0xFFFFFFF1
_OLD_MAGICS = {0xFFFFFFFB: "1.2-1.15", 0xFFFFFFFA: "1.16-1.17"}
_FUNC_HEADER = 8  # entryOff uint32 + nameOff int32: the start of runtime._func


@dataclass(frozen=True)
class Function:
    """A function's name and [entry, end) virtual address range.

    `file_offset` is the entry's offset in the file: the value a tracefs
    `uprobe_events` line or perf_event_open takes. BCC's `attach_uprobe(addr=)`
    takes `entry` (it converts to a file offset itself).
    """

    name: str
    entry: int
    end: int
    file_offset: int

    @property
    def size(self) -> int:
        return self.end - self.entry


@dataclass(frozen=True)
class DataSymbol:
    """A data object from `.symtab` (e.g. runtime.waitReasonStrings)."""

    name: str
    addr: int
    size: int


_STT_OBJECT = 1
_STT_FUNC = 2


def read_symtab(image: ElfImage) -> tuple[list[Function], dict[str, DataSymbol]]:
    """Functions (STT_FUNC) and data objects (STT_OBJECT) from `.symtab`; empty if stripped.

    Entries are unpacked with struct.iter_unpack rather than pyelftools'
    per-symbol objects: 10x faster on Go binaries with 100k+ symbols.
    """
    funcs: list[Function] = []
    data: dict[str, DataSymbol] = {}
    with guard(f"{image.path}: reading .symtab"):
        sec = image.elf.get_section_by_name(".symtab")
        if not isinstance(sec, SymbolTableSection):
            return funcs, data
        raw = image.section_bytes(".symtab") or b""
        strtab_sec = image.elf.get_section(sec.header["sh_link"])
        strtab = image.section_bytes(strtab_sec.name) or b""
        bo = "<" if image.little_endian else ">"
        if image.ptr_size == 8:
            fmt, order = bo + "IBBHQQ", (0, 1, 4, 5)  # name, info, value, size
        else:
            fmt, order = bo + "IIIBBH", (0, 3, 1, 2)
        esize = struct.calcsize(fmt)
        usable = len(raw) - len(raw) % esize
        for entry in struct.iter_unpack(fmt, raw[:usable]):
            name_off, info, value, size = (entry[i] for i in order)
            kind = info & 0xF
            if not value or kind not in (_STT_FUNC, _STT_OBJECT):
                continue
            nul = strtab.find(b"\x00", name_off)
            if nul < 0:
                raise GoBinaryError(f"{image.path}: unterminated .strtab name at {name_off}")
            name = strtab[name_off:nul].decode("utf-8", errors="replace")
            if kind == _STT_FUNC:
                try:
                    off = image.vaddr_to_offset(value)
                except GoBinaryError:
                    continue
                funcs.append(Function(name, value, value + size, off))
            else:
                data.setdefault(name, DataSymbol(name, value, size))
    return funcs, data


def _find_pclntab(image: ElfImage) -> tuple[bytes, int]:
    """The pclntab bytes and vaddr: `.gopclntab`, else a scan of read-only data."""
    for name in (".gopclntab", ".data.rel.ro.gopclntab"):
        raw = image.section_bytes(name)
        if raw:
            return raw, image.sections[name].addr
    # PIE/externally linked binaries fold it into .data.rel.ro or .rodata: look
    # for a header whose magic, padding, quantum and pointer size all fit.
    for name in (".data.rel.ro", ".rodata", ".noptrdata"):
        raw = image.section_bytes(name)
        if not raw:
            continue
        for magic in (PCLNTAB_MAGIC_120, PCLNTAB_MAGIC_118):
            pat = magic.to_bytes(4, "little" if image.little_endian else "big") + b"\x00\x00"
            pos = raw.find(pat)
            while pos >= 0:
                quantum_ok = raw[pos + 6 : pos + 7] in (b"\x01", b"\x02", b"\x04")
                if quantum_ok and raw[pos + 7 : pos + 8] == bytes([image.ptr_size]):
                    return raw[pos:], image.sections[name].addr + pos
                pos = raw.find(pat, pos + 1)
    raise GoBinaryError(f"{image.path}: no .gopclntab (not a Go binary?)")


_FUNC_FLAG_ASM = 4  # abi.FuncFlagAsm: written in assembly (ABI0)
_MODULEDATA_TEXT_WORD = 22  # moduledata.text: after pcHeader, 6 slices, findfunctab, minpc, maxpc


def _text_start(image: ElfImage, tab_vaddr: int, funcname_off: int, header_text: int) -> int:
    """The base that functab entry offsets are relative to (runtime moduledata.text).

    Go 1.18-1.2x stored it in the pclntab header; newer releases leave that word
    zero (it needed a relocation) and only `moduledata.text` has it. moduledata is
    found as the data word that points at the pclntab, checked by its second word
    (the funcnametab slice) pointing at the name table.
    """
    if header_text:
        return header_text
    ps = image.ptr_size
    word = "Q" if ps == 8 else "I"
    needle = tab_vaddr.to_bytes(ps, "little" if image.little_endian else "big")
    for name in (".go.module", ".noptrdata", ".data.rel.ro", ".data"):
        raw = image.section_bytes(name)
        if not raw:
            continue
        pos = raw.find(needle)
        while pos >= 0:
            if pos % ps == 0 and pos + (_MODULEDATA_TEXT_WORD + 1) * ps <= len(raw):
                words = image.unpack(word * (_MODULEDATA_TEXT_WORD + 1), raw, pos)
                if words[1] == tab_vaddr + funcname_off and words[_MODULEDATA_TEXT_WORD]:
                    return words[_MODULEDATA_TEXT_WORD]
            pos = raw.find(needle, pos + 1)
    text = image.sections.get(".text")
    if text is None:
        raise GoBinaryError(f"{image.path}: cannot find the text base of the pclntab")
    return text.addr


def read_pclntab(image: ElfImage) -> list[Function]:
    """All functions listed in the Go pclntab, sorted by entry, with end addresses.

    A function's end is the next function's entry (the table is sorted and the
    last entry is the end of text), so sizes include alignment padding; that is
    fine for probing RETs, which are never in the padding.

    Names follow `.symtab`'s convention: when the pclntab lists a name twice (a
    Go function and its ABI0<->ABIInternal wrapper, or an assembly function and
    its wrapper), the ABIInternal one keeps the plain name and the other gets the
    `.abi0` suffix, so `runtime.goexit1` means the same code with or without
    `.symtab`.
    """
    with guard(f"{image.path}: reading .gopclntab"):
        tab, tab_vaddr = _find_pclntab(image)
        ps = image.ptr_size
        if len(tab) < 8 + 8 * ps:
            raise GoBinaryError(f"{image.path}: pclntab header truncated")
        (magic,) = image.unpack("I", tab)
        if magic in _OLD_MAGICS:
            raise GoBinaryError(
                f"{image.path}: pclntab of Go {_OLD_MAGICS[magic]} is not supported (needs 1.18+)"
            )
        if magic not in (PCLNTAB_MAGIC_118, PCLNTAB_MAGIC_120):
            raise GoBinaryError(f"{image.path}: unknown pclntab magic {magic:#x}")
        if tab[4] != 0 or tab[5] != 0 or tab[7] != ps:
            raise GoBinaryError(f"{image.path}: pclntab header does not match the ELF class")
        # runtime._func: 1.20 added startLine before funcID.
        funcid_at = 40 if magic == PCLNTAB_MAGIC_120 else 36
        word = "Q" if ps == 8 else "I"
        nfunc, _nfiles, header_text, funcname_off, _cu, _file, _pc, functab_off = image.unpack(
            word * 8, tab, 8
        )
        # functab: nfunc+1 pairs of (entryOff, funcOff) uint32; the last entryOff is etext.
        if functab_off > len(tab) or nfunc > (len(tab) - functab_off) // 8 - 1:
            raise GoBinaryError(f"{image.path}: pclntab function count {nfunc} exceeds the table")
        if funcname_off > len(tab):
            raise GoBinaryError(f"{image.path}: pclntab funcname table outside the table")
        text_start = _text_start(image, tab_vaddr, funcname_off, header_text)
        entries = image.unpack("I" * (2 * nfunc + 2), tab, functab_off) if nfunc else ()
        names = tab[funcname_off:]
        raw: list[tuple[str, int, int, int, int]] = []  # name, entry, end, funcID, flag
        prev_entry = -1
        for i in range(nfunc):
            entry_off, func_off = entries[2 * i], entries[2 * i + 1]
            end_off = entries[2 * i + 2]
            if entry_off < prev_entry or end_off < entry_off:
                raise GoBinaryError(f"{image.path}: pclntab functab not sorted at index {i}")
            prev_entry = entry_off
            fstart = functab_off + func_off
            _f_entry, name_off = image.unpack("Ii", tab, fstart)
            if name_off < 0 or name_off >= len(names) or fstart + funcid_at + 2 > len(tab):
                raise GoBinaryError(f"{image.path}: pclntab entry {i} points outside the table")
            nul = names.find(b"\x00", name_off)
            if nul < 0:
                raise GoBinaryError(f"{image.path}: unterminated function name in pclntab")
            name = names[name_off:nul].decode("utf-8", errors="replace")
            fid, flag = tab[fstart + funcid_at], tab[fstart + funcid_at + 1]
            raw.append((name, text_start + entry_off, text_start + end_off, fid, flag))
        return [
            Function(name, entry, end, image.vaddr_to_offset(entry))
            for name, entry, end in _abi_names(raw)
        ]


def _abi_names(raw: list[tuple[str, int, int, int, int]]) -> list[tuple[str, int, int]]:
    """Give duplicated names the `.abi0` suffix on the ABI0 copy, as `.symtab` does.

    The ABIInternal copy is the one not written in assembly; between two Go
    copies, the one that is not an autogenerated wrapper (lowest funcID; the
    wrapper id is the last of the enum), then the lowest address.
    """
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(raw):
        groups.setdefault(r[0], []).append(i)
    out = [(r[0], r[1], r[2]) for r in raw]
    for name, idx in groups.items():
        if len(idx) < 2:
            continue
        best = min(idx, key=lambda i: (bool(raw[i][4] & _FUNC_FLAG_ASM), raw[i][3], raw[i][1]))
        for i in idx:
            if i != best:
                out[i] = (name + ".abi0", raw[i][1], raw[i][2])
    return out


class SymbolTable:
    """Function lookup by name or address, from `.symtab` or else `.gopclntab`."""

    def __init__(self, image: ElfImage) -> None:
        self.path = image.path
        self.symtab_error: str | None = None
        try:
            funcs, self.data = read_symtab(image)
        except GoBinaryError as e:
            # A damaged .symtab must not cost the probes: the pclntab still has them.
            self.symtab_error = str(e)
            funcs, self.data = [], {}
        self.source = "symtab"
        if not funcs:
            funcs = read_pclntab(image)
            self.source = "pclntab"
        funcs.sort(key=lambda f: f.entry)
        self._funcs = funcs
        self._entries = [f.entry for f in funcs]
        self._by_name: dict[str, Function] = {}
        for f in funcs:
            self._by_name.setdefault(f.name, f)
        # Assembly functions are 'x.abi0' in .symtab but plain 'x' in the pclntab:
        # answer both spellings whichever table was read.
        for f in funcs:
            if f.name.endswith(".abi0"):
                self._by_name.setdefault(f.name.removesuffix(".abi0"), f)
            else:
                self._by_name.setdefault(f.name + ".abi0", f)

    def __len__(self) -> int:
        return len(self._funcs)

    def __iter__(self) -> Iterator[Function]:
        return iter(self._funcs)

    def function(self, name: str) -> Function | None:
        """The function with exactly this symbol name (e.g. 'runtime.gopark')."""
        return self._by_name.get(name)

    def require(self, name: str) -> Function:
        f = self._by_name.get(name)
        if f is None:
            raise GoBinaryError(f"{self.path}: no function {name!r} (inlined, or not linked in)")
        return f

    def match(self, pattern: str) -> list[Function]:
        """Functions whose name matches a regular expression (fullmatch)."""
        rx = re.compile(pattern)
        return [f for f in self._funcs if rx.fullmatch(f.name)]

    def function_at(self, addr: int) -> Function | None:
        """The function whose [entry, end) contains `addr`."""
        i = bisect.bisect_right(self._entries, addr) - 1
        if i >= 0 and addr < self._funcs[i].end:
            return self._funcs[i]
        return None

    def data_symbol(self, name: str) -> DataSymbol | None:
        """A data object by name; only with `.symtab` (pclntab lists code only)."""
        return self.data.get(name)
