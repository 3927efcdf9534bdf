"""Go version and module list from the `.go.buildinfo` section.

The receiver picks probe points and struct layouts per Go release and per
dependency version (grpc-go renamed functions across 1.60-1.85), so it needs the
same facts `go version -m` prints. Both section formats are read: Go >= 1.18
stores the two strings inline (varint length + bytes), older releases store two
pointers to Go string headers. Stripping (`-s -w`) keeps this section.
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import dataclass, field

from .elfimage import ElfImage, GoBinaryError, guard

__all__ = ["BuildInfo", "Module", "parse_go_version", "parse_modinfo", "read_buildinfo"]

MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
_FLAG_BIG_ENDIAN = 1
_FLAG_INLINE = 2
_SCAN_LIMIT = 64 * 1024  # the header is at the start of the data segment
_MAX_STRING = 16 << 20

# The linker wraps modinfo in 16-byte sentinels (cmd/go/internal/modload.ModInfoProg).
_SENTINEL_LEN = 16

_VERSION_RE = re.compile(r"go(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Module:
    """One module line: path, version, go.sum hash, and its replacement if any."""

    path: str
    version: str = ""
    sum: str = ""
    replace: Module | None = None


@dataclass(frozen=True)
class BuildInfo:
    """What `go version -m` shows for a binary."""

    go_version: str  # as stored, e.g. "go1.26.8" or "go1.27.3 X:nodwarf5"
    path: str = ""  # the main package path
    main: Module | None = None
    deps: tuple[Module, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)

    @property
    def version_tuple(self) -> tuple[int, int, int] | None:
        """(major, minor, patch), None for an unparsable (e.g. devel) version."""
        return parse_go_version(self.go_version)

    def dep(self, path: str) -> Module | None:
        """The dependency with this module path (its replacement applied), if linked in."""
        for m in self.deps:
            if m.path == path:
                return m.replace or m
        return None


def parse_go_version(text: str) -> tuple[int, int, int] | None:
    """'go1.26.8' -> (1, 26, 8); 'go1.27rc1' -> (1, 27, 0); None when no goX.Y."""
    m = _VERSION_RE.search(text)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def parse_modinfo(text: str) -> tuple[str, Module | None, tuple[Module, ...], dict[str, str]]:
    """Parse the modinfo text (lines 'path', 'mod', 'dep', '=>', 'build').

    Unknown lines are skipped: newer toolchains may add kinds, and the version
    and deps must still come out.
    """
    path = ""
    main: Module | None = None
    deps: list[Module] = []
    settings: dict[str, str] = {}
    last: str | None = None  # which entry a '=>' line replaces
    for line in text.splitlines():
        parts = line.split("\t")
        kind = parts[0]
        if kind == "path" and len(parts) >= 2:
            path = parts[1]
            last = None
        elif kind in ("mod", "dep") and len(parts) >= 2:
            mod = Module(parts[1], _at(parts, 2), _at(parts, 3))
            if kind == "mod":
                main = mod
            else:
                deps.append(mod)
            last = kind
        elif kind == "=>" and len(parts) >= 2 and last is not None:
            rep = Module(parts[1], _at(parts, 2), _at(parts, 3))
            if last == "mod" and main is not None:
                main = Module(main.path, main.version, main.sum, rep)
            elif last == "dep" and deps:
                d = deps[-1]
                deps[-1] = Module(d.path, d.version, d.sum, rep)
            last = None
        elif kind == "build" and len(parts) >= 2:
            key, value = _split_setting("\t".join(parts[1:]))
            settings[key] = value
    return path, main, tuple(deps), settings


def _unquote(s: str) -> str:
    """Go strconv.Quote'd text (used for settings with spaces, '=' or quotes)."""
    try:
        v = json.loads(s)
    except ValueError:
        return s.strip('"')
    return v if isinstance(v, str) else s


def _split_setting(text: str) -> tuple[str, str]:
    """'key=value', where either side may be Go-quoted (`-ldflags="-s -w"`)."""
    if text.startswith('"'):
        end = 1
        while end < len(text) and (text[end] != '"' or text[end - 1] == "\\"):
            end += 1
        key, rest = _unquote(text[: end + 1]), text[end + 1 :]
        value = rest[1:] if rest.startswith("=") else rest
    else:
        key, _, value = text.partition("=")
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = _unquote(value)
    return key, value


def _at(parts: list[str], i: int) -> str:
    return parts[i] if len(parts) > i else ""


def _find_header(image: ElfImage) -> tuple[bytes, int]:
    """The buildinfo blob and its virtual address: the section, else a segment scan."""
    sec = image.sections.get(".go.buildinfo")
    if sec is not None and not sec.nobits:
        raw = image.section_bytes(".go.buildinfo") or b""
        if raw.startswith(MAGIC):
            return raw, sec.addr
    # Section headers can be gone (sstrip, some packers): Go's debug/buildinfo
    # searches the first writable segment at 16-byte alignment, and so do we.
    for seg in image.segments:
        if not seg.flags & 2:  # PF_W
            continue
        end = min(seg.offset + min(seg.filesz, _SCAN_LIMIT), len(image.data))
        blob = image.data[seg.offset : end]
        pos = 0
        while True:
            pos = blob.find(MAGIC, pos)
            if pos < 0:
                break
            if pos % 16 == 0:
                return image.data[seg.offset + pos : seg.offset + seg.filesz], seg.vaddr + pos
            pos += 1
        break
    raise GoBinaryError(f"{image.path}: no Go build info (not a Go binary, or Go < 1.13)")


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = 0
    shift = 0
    for i in range(10):  # a uint64 never needs more than 10 bytes
        if pos + i >= len(buf):
            raise GoBinaryError("build info: truncated varint")
        b = buf[pos + i]
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos + i + 1
        shift += 7
    raise GoBinaryError("build info: varint too long")


def _inline_string(buf: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _uvarint(buf, pos)
    if n > _MAX_STRING or pos + n > len(buf):
        raise GoBinaryError(f"build info: string of {n} bytes runs past the section")
    return buf[pos : pos + n], pos + n


def read_buildinfo(image: ElfImage) -> BuildInfo:
    """Read the Go version and the module list of `image`."""
    with guard(f"{image.path}: reading .go.buildinfo"):
        blob, _vaddr = _find_header(image)
        if len(blob) < HEADER_SIZE:
            raise GoBinaryError(f"{image.path}: build info header truncated")
        ptr_size = blob[14]
        flags = blob[15]
        if flags & _FLAG_INLINE:
            version, pos = _inline_string(blob, HEADER_SIZE)
            modinfo, _ = _inline_string(blob, pos)
        else:
            if ptr_size not in (4, 8):
                raise GoBinaryError(f"{image.path}: build info pointer size {ptr_size}")
            bo = ">" if flags & _FLAG_BIG_ENDIAN else "<"
            word = "Q" if ptr_size == 8 else "I"
            vers_ptr, mod_ptr = struct.unpack_from(bo + word * 2, blob, 16)
            version = _pointer_string(image, vers_ptr)
            modinfo = _pointer_string(image, mod_ptr)
        # Sentinels are cut on bytes: they are not UTF-8.
        if len(modinfo) >= 2 * _SENTINEL_LEN + 1 and modinfo[-_SENTINEL_LEN - 1] == 0x0A:
            modinfo = modinfo[_SENTINEL_LEN:-_SENTINEL_LEN]
        vers = version.decode("utf-8", errors="replace")
        if not vers.startswith(("go", "devel")):
            raise GoBinaryError(f"{image.path}: build info version {vers[:40]!r} is not Go's")
        path, main, deps, settings = parse_modinfo(modinfo.decode("utf-8", errors="replace"))
        return BuildInfo(vers, path, main, deps, settings)


def _pointer_string(image: ElfImage, ptr: int) -> bytes:
    """Pre-1.18 format: `ptr` points at a Go string header (data, len)."""
    if ptr == 0:
        return b""
    data = image.read_ptr(ptr)
    n = image.read_ptr(ptr + image.ptr_size)
    if n > _MAX_STRING:
        raise GoBinaryError(f"{image.path}: build info string of {n} bytes")
    return image.read(data, n) if n else b""
