"""Runtime offsets: the version table equals DESIGN §5, DWARF is preferred."""

from __future__ import annotations

import pytest

from otel_goblock.golang import RUNTIME_OFFSETS, GoBinary, table_offsets

from .conftest import Built

# DESIGN §5, verbatim: g.goid 152 (1.21-1.22, 1.25-1.26), 160 (1.23-1.24);
# g.atomicstatus 144/152/144; g.waitreason 176/184/176; g.m 48;
# m.procid 72 (<=1.24), 64 (1.25+).
DESIGN = {
    21: (152, 144, 176, 48, 72),
    22: (152, 144, 176, 48, 72),
    23: (160, 152, 184, 48, 72),
    24: (160, 152, 184, 48, 72),
    25: (152, 144, 176, 48, 64),
    26: (152, 144, 176, 48, 64),
}
FIELDS = ("g.goid", "g.atomicstatus", "g.waitreason", "g.m", "m.procid")


@pytest.mark.parametrize("minor", sorted(DESIGN))
@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_table_matches_design(minor: int, arch: str) -> None:
    got = table_offsets((1, minor, 3), arch)
    assert got is not None
    assert tuple(got[f] for f in FIELDS) == DESIGN[minor]


def test_table_coverage() -> None:
    assert sorted(RUNTIME_OFFSETS) == [(1, m) for m in range(21, 28)]
    assert table_offsets((1, 20, 0), "amd64") is None
    assert table_offsets((1, 28, 0), "amd64") is None
    assert table_offsets((1, 26, 0), "riscv64") is None
    assert table_offsets(None, "amd64") is None


def test_dwarf_is_preferred(otel_dwarf: Built) -> None:
    lay = GoBinary(str(otel_dwarf.path)).runtime_layout
    assert lay.source == "dwarf" and lay.usable and lay.lost == ()
    minor = int(otel_dwarf.toolchain.split(".")[1])
    assert lay.offsets == RUNTIME_OFFSETS[(1, minor)]
    assert "from DWARF" in lay.log_line("svc") and "lost" not in lay.log_line("svc")


def test_stripped_falls_back_with_one_clear_line(otel_stripped: Built) -> None:
    gb = GoBinary(str(otel_stripped.path))
    lay = gb.runtime_layout
    assert lay.source == "table" and lay.usable
    assert lay["g.goid"] == 152
    assert any("span markers" in s for s in lay.lost)
    line = lay.log_line(str(otel_stripped.path))
    assert "\n" not in line
    assert "built-in table" in line and "span markers (OTel SDK span ids) (needs DWARF)" in line


def test_stripped_unknown_release_says_runtime_probes_are_lost(otel_stripped: Built) -> None:
    gb = GoBinary(str(otel_stripped.path))
    # A release newer than every table; no such toolchain may be fetched here, so
    # the version string is the one thing faked.
    object.__setattr__(gb.buildinfo, "go_version", "go1.40.1")
    from otel_goblock.golang.offsets import runtime_layout

    lay = runtime_layout(gb)
    assert lay.source == "none" and not lay.usable
    assert any(s.startswith("runtime probes") for s in lay.lost)
