"""One ELF file held in memory, with the few address conversions a Go binary needs.

Every other module of this package reads the binary through :class:`ElfImage`, so
there is one place that turns pyelftools' many exception types into
:class:`GoBinaryError` and one place that maps virtual addresses to file offsets
(uprobes are placed by file offset; symbols and pointers inside the binary are
virtual addresses).
"""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from elftools.elf.elffile import ELFFile

__all__ = ["ElfImage", "GoBinaryError", "Section", "Segment", "guard"]

# Go's GOARCH names for the ELF machines we understand.
_MACHINES = {"EM_X86_64": "amd64", "EM_AARCH64": "arm64", "EM_386": "386", "EM_ARM": "arm"}


class GoBinaryError(Exception):
    """The file is not a Go ELF binary this package can read, or it is damaged.

    The single exception type of this package: callers (the eBPF receiver) catch
    it and log one line instead of handling pyelftools' struct, construct, index
    and decode errors one by one.
    """


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Turn any parsing failure inside the block into a GoBinaryError.

    pyelftools and struct raise a dozen exception types on truncated or corrupt
    input (ELFParseError, struct.error, IndexError, UnicodeDecodeError, zlib.error,
    RecursionError, ...); a damaged binary must never escape as one of those.
    """
    try:
        yield
    except GoBinaryError:
        raise
    except MemoryError:
        raise
    except Exception as e:
        raise GoBinaryError(f"{what}: {type(e).__name__}: {e}") from e


@dataclass(frozen=True)
class Section:
    """A section header: name, load address (0 when not loaded), file range."""

    name: str
    addr: int
    offset: int
    size: int
    nobits: bool
    compressed: bool


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD program header: the mapping the kernel (and uprobes) use."""

    vaddr: int
    offset: int
    filesz: int
    memsz: int
    flags: int


class ElfImage:
    """An ELF file read fully into memory (the target may be rebuilt on disk meanwhile)."""

    def __init__(self, data: bytes, path: str = "<memory>") -> None:
        self.path = path
        self.data = data
        with guard(f"{path}: not a readable ELF file"):
            self.elf = ELFFile(io.BytesIO(data))
            hdr = self.elf.header
            self.machine: str = hdr["e_machine"]
            self.elf_type: str = hdr["e_type"]
            self.little_endian: bool = self.elf.little_endian
            self.ptr_size: int = 8 if self.elf.elfclass == 64 else 4
            self.sections: dict[str, Section] = {}
            for s in self.elf.iter_sections():
                h = s.header
                self.sections.setdefault(
                    s.name,
                    Section(
                        name=s.name,
                        addr=h["sh_addr"],
                        offset=h["sh_offset"],
                        size=h["sh_size"],
                        nobits=h["sh_type"] == "SHT_NOBITS",
                        compressed=bool(h["sh_flags"] & 0x800),  # SHF_COMPRESSED
                    ),
                )
            self.segments: list[Segment] = [
                Segment(
                    vaddr=seg.header["p_vaddr"],
                    offset=seg.header["p_offset"],
                    filesz=seg.header["p_filesz"],
                    memsz=seg.header["p_memsz"],
                    flags=seg.header["p_flags"],
                )
                for seg in self.elf.iter_segments()
                if seg.header["p_type"] == "PT_LOAD"
            ]
        self.arch: str = _MACHINES.get(self.machine, self.machine)
        self._bo = "<" if self.little_endian else ">"

    @classmethod
    def open(cls, path: str) -> ElfImage:
        """Read `path` into memory; OSError becomes GoBinaryError too."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise GoBinaryError(f"{path}: cannot read: {e}") from e
        return cls(data, path)

    # -- raw access -------------------------------------------------------

    def section_bytes(self, name: str) -> bytes | None:
        """Raw (not decompressed) bytes of a section, None when absent or NOBITS."""
        s = self.sections.get(name)
        if s is None or s.nobits:
            return None
        if s.offset + s.size > len(self.data):
            raise GoBinaryError(f"{self.path}: section {name} extends past end of file")
        return self.data[s.offset : s.offset + s.size]

    def vaddr_to_offset(self, vaddr: int) -> int:
        """File offset of a virtual address, through the PT_LOAD segments.

        This is what a uprobe needs (tracefs `uprobe_events` and perf_event_open
        take `path:offset`); BCC's attach_uprobe(addr=...) takes the vaddr and does
        this same conversion itself.
        """
        for seg in self.segments:
            if seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return vaddr - seg.vaddr + seg.offset
        raise GoBinaryError(f"{self.path}: address {vaddr:#x} is not backed by the file")

    def offset_to_vaddr(self, offset: int) -> int:
        """Inverse of :meth:`vaddr_to_offset` (for addresses found by scanning bytes)."""
        for seg in self.segments:
            if seg.offset <= offset < seg.offset + seg.filesz:
                return offset - seg.offset + seg.vaddr
        raise GoBinaryError(f"{self.path}: file offset {offset:#x} is not in a loaded segment")

    def read(self, vaddr: int, size: int) -> bytes:
        """`size` bytes at a virtual address (must be backed by file contents)."""
        if size < 0:
            raise GoBinaryError(f"{self.path}: negative read size {size}")
        off = self.vaddr_to_offset(vaddr)
        if off + size > len(self.data):
            raise GoBinaryError(f"{self.path}: read of {size} bytes at {vaddr:#x} past end of file")
        for seg in self.segments:
            seg_end = seg.vaddr + seg.filesz
            if seg.vaddr <= vaddr < seg_end and vaddr + size > seg_end:
                raise GoBinaryError(f"{self.path}: read at {vaddr:#x} crosses a segment end")
        return self.data[off : off + size]

    def read_ptr(self, vaddr: int) -> int:
        """A pointer-sized word at `vaddr` in the binary's byte order."""
        fmt = self._bo + ("Q" if self.ptr_size == 8 else "I")
        return struct.unpack(fmt, self.read(vaddr, self.ptr_size))[0]

    def read_go_string(self, vaddr: int, max_len: int = 1 << 20) -> str:
        """A Go string header (data pointer, length) at `vaddr`, decoded as UTF-8."""
        ptr = self.read_ptr(vaddr)
        n = self.read_ptr(vaddr + self.ptr_size)
        if n == 0:
            return ""
        if n > max_len:
            raise GoBinaryError(f"{self.path}: implausible Go string length {n} at {vaddr:#x}")
        return self.read(ptr, n).decode("utf-8", errors="replace")

    def unpack(self, fmt: str, buf: bytes, offset: int = 0) -> tuple[int, ...]:
        """struct.unpack_from in the binary's byte order; short input is a GoBinaryError."""
        try:
            return struct.unpack_from(self._bo + fmt, buf, offset)
        except struct.error as e:
            raise GoBinaryError(f"{self.path}: truncated data: {e}") from e

    # -- identity ---------------------------------------------------------

    def notes(self) -> dict[str, bytes]:
        """Descriptors of the Go and GNU build-id notes, keyed 'go' / 'gnu'."""
        out: dict[str, bytes] = {}
        for name, key in ((".note.go.buildid", "go"), (".note.gnu.build-id", "gnu")):
            raw = self.section_bytes(name)
            if raw is None or len(raw) < 12:
                continue
            namesz, descsz, _ntype = self.unpack("III", raw)
            start = 12 + ((namesz + 3) & ~3)
            desc = raw[start : start + descsz]
            if len(desc) == descsz:
                out[key] = desc
        return out

    def build_id(self) -> str:
        """The Go build id (else GNU build id in hex, else '')."""
        n = self.notes()
        if "go" in n:
            return n["go"].decode("ascii", errors="replace")
        if "gnu" in n:
            return n["gnu"].hex()
        return ""
