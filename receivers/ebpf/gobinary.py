"""Which Go runtime a target runs, and where `g.goid` sits in its `runtime.g`.

The BPF side reads the goroutine id at FS-8 → g → g.goid (DESIGN §4-5), and the goid offset
depends on the Go release.  The release is read from the binary's `.go.buildinfo` section,
which survives stripping, and the offset first from the release table of DESIGN §5 (the
target must be attached within milliseconds of its exec), then — off the attach path —
from DWARF when the binary has it (`dwarf_goid_offset`, 0.1-0.3 s), which corrects the
table.  A non-Go target gets offset 0 and its events carry goid 0.
"""

from __future__ import annotations

from functools import lru_cache

from elftools.elf.elffile import ELFFile

from otel_goblock.golang.buildinfo import parse_go_version
from otel_goblock.golang.offsets import table_offsets

_BUILDINFO_MAGIC = b"\xff Go buildinf:"

# newest releases' g.goid when the release is newer than otel_goblock.golang's table: a
# wrong guess yields wrong goids (corrected from DWARF in the background), not a crash
_DEFAULT_GOID_OFFSET = 152


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def go_version(path: str) -> str | None:
    """ "go1.26.0" etc. from `.go.buildinfo` (Go ≥ 1.18 inline-string format), None if not Go."""
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            sec = elf.get_section_by_name(".go.buildinfo")
            if sec is None:
                return None
            data = sec.data()
    except (OSError, Exception):
        return None
    if not data.startswith(_BUILDINFO_MAGIC) or len(data) < 33:
        return None
    flags = data[15]
    if not flags & 0x2:  # pre-1.18 pointer format: older than anything we support
        return None
    n, pos = _uvarint(data, 32)
    return data[pos : pos + n].decode(errors="replace")


@lru_cache(maxsize=256)
def _goid_offset_cached(path: str, _mtime_ns: int, _size: int) -> int:
    version = go_version(path)
    if version is None:
        return 0
    # the release table of otel_goblock.golang (DESIGN §5), not a copy of it
    table = table_offsets(parse_go_version(version), "amd64")
    return table["g.goid"] if table else _DEFAULT_GOID_OFFSET


def goid_offset(path: str) -> int:
    """g.goid offset for the Go binary at `path`; 0 when it is not a Go binary."""
    import os

    try:
        st = os.stat(path)
    except OSError:
        return 0
    return _goid_offset_cached(path, st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=256)
def _dwarf_goid_cached(path: str, _mtime_ns: int, _size: int) -> int | None:
    from otel_goblock.golang.binary import open_go_binary

    try:
        layout = open_go_binary(path).runtime_layout
    except Exception:
        return None
    return layout.offsets.get("g.goid") if layout.source == "dwarf" else None


def dwarf_goid_offset(path: str) -> int | None:
    """g.goid from the binary's DWARF (otel_goblock.golang), None without DWARF.

    Slow (0.1-0.3 s per binary, cached by path/mtime/size): the target set calls it off
    the attach path and corrects the kernel's offset when the table guessed wrong."""
    import os

    try:
        st = os.stat(path)
    except OSError:
        return None
    return _dwarf_goid_cached(path, st.st_mtime_ns, st.st_size)
