"""Go runtime struct offsets the probes read, from DWARF or a per-release table.

The g/m probes need five offsets: g.goid, g.atomicstatus, g.waitreason, g.m and
m.procid. DWARF is the truth (it is what proves a new release like 1.27); the
table is only for stripped (`-s -w`) binaries. A stripped binary also loses
every non-runtime layout (OTel SDK span markers, grpc-go frames), which
:func:`runtime_layout` reports so the receiver can log one clear line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .elfimage import GoBinaryError

if TYPE_CHECKING:
    from .binary import GoBinary

__all__ = ["RUNTIME_OFFSETS", "RuntimeLayout", "runtime_layout", "table_offsets"]

# (minor) -> offsets, identical on amd64 and arm64 (every field before them is
# pointer-sized or a uint32 pair). How they move, from runtime2.go:
#   g = stack(16) stackguard0 stackguard1 _panic _defer m@48 sched(gobuf)
#       syscallsp syscallpc [syscallbp, 1.23+] stktopsp param atomicstatus(u32)
#       stackLock(u32) goid schedlink waitsince waitreason(u8)
#   gobuf = sp pc g ctxt [ret, <=1.24] lr bp   (7 words <=1.24, 6 words 1.25+)
#   m = g0 morebuf(gobuf) divmod(u32) _(u32) procid
# so 1.23 (+syscallbp) moves atomicstatus/goid/waitreason by +8, 1.25 (-gobuf.ret)
# moves them back and m.procid 72 -> 64. 1.26 and 1.27 are checked against the
# DWARF of binaries built here; 1.21-1.25 against the DESIGN §5 values and
# third-party mirrors of those releases' g/gobuf (no older toolchain may run here).
_G121 = {"g.goid": 152, "g.atomicstatus": 144, "g.waitreason": 176, "g.m": 48, "m.procid": 72}
_G123 = {"g.goid": 160, "g.atomicstatus": 152, "g.waitreason": 184, "g.m": 48, "m.procid": 72}
_G125 = {"g.goid": 152, "g.atomicstatus": 144, "g.waitreason": 176, "g.m": 48, "m.procid": 64}
RUNTIME_OFFSETS: dict[tuple[int, int], dict[str, int]] = {
    (1, 21): _G121,
    (1, 22): _G121,
    (1, 23): _G123,
    (1, 24): _G123,
    (1, 25): _G125,
    (1, 26): _G125,
    (1, 27): _G125,
}
TABLE_ARCHES = frozenset({"amd64", "arm64"})
FIELDS = ("g.goid", "g.atomicstatus", "g.waitreason", "g.m", "m.procid")

# What needs DWARF beyond the runtime, and the probe family that loses it.
DWARF_ONLY = (
    ("go.opentelemetry.io/otel/sdk/trace.recordingSpan", "span markers (OTel SDK span ids)"),
    ("golang.org/x/net/http2.GoAwayFrame", "gRPC GOAWAY code and debug data"),
)


@dataclass(frozen=True)
class RuntimeLayout:
    """Offsets for the runtime probes, where they came from and what is missing.

    source: 'dwarf', 'table' or 'none' (no offsets: runtime probes impossible).
    lost: human phrases for what the receiver cannot do with this binary.
    """

    go_version: str
    arch: str
    offsets: dict[str, int]
    source: str
    lost: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return all(f in self.offsets for f in FIELDS)

    def __getitem__(self, name: str) -> int:
        return self.offsets[name]

    def log_line(self, path: str) -> str:
        """One line for the receiver's log, saying what works and what is lost."""
        where = {"dwarf": "DWARF", "table": "built-in table", "none": "nowhere"}[self.source]
        line = f"{path}: {self.go_version} {self.arch}: runtime offsets from {where}"
        if self.lost:
            line += "; lost: " + "; ".join(self.lost)
        return line


def table_offsets(version: tuple[int, int, int] | None, arch: str) -> dict[str, int] | None:
    """The built-in offsets for a release and GOARCH, None when not covered."""
    if version is None or arch not in TABLE_ARCHES:
        return None
    t = RUNTIME_OFFSETS.get(version[:2])
    return dict(t) if t is not None else None


def runtime_layout(binary: GoBinary) -> RuntimeLayout:
    """Prefer DWARF, fall back to the table; list what a missing DWARF costs."""
    version = binary.buildinfo.go_version
    arch = binary.arch
    lost: list[str] = []
    offsets: dict[str, int] = {}
    source = "none"
    dw = binary.dwarf
    dwarf_ok = dw.available
    if dwarf_ok:
        try:
            g = dw.offsets("runtime.g", "goid", "atomicstatus", "waitreason", "m")
            m = dw.offsets("runtime.m", "procid")
        except GoBinaryError as e:
            # Damaged DWARF must not cost the runtime probes the table can still give.
            lost.append(f"DWARF unreadable ({e})")
            dwarf_ok = False
        else:
            found = {f"g.{k}": v for k, v in g.items() if v is not None}
            found.update({f"m.{k}": v for k, v in m.items() if v is not None})
            if all(f in found for f in FIELDS):
                offsets, source = found, "dwarf"
    if source == "none":
        table = table_offsets(binary.buildinfo.version_tuple, arch)
        if table is not None:
            offsets, source = table, "table"
        else:
            lost.append(f"runtime probes (no DWARF and no built-in offsets for {version} {arch})")
    if not dwarf_ok:
        lost.extend(f"{what} (needs DWARF)" for _t, what in DWARF_ONLY)
    wr = binary.wait_reasons
    if wr.source == "table":
        lost.append("wait-reason names come from the built-in table, not the binary")
    elif wr.source == "none":
        lost.append("wait-reason names (numbers only)")
    return RuntimeLayout(version, arch, offsets, source, tuple(lost))
