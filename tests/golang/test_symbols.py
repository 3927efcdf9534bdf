"""Function symbols from .gopclntab agree with .symtab; stripped builds keep them."""

from __future__ import annotations

import pytest

from otel_goblock.golang import ElfImage, GoBinaryError, SymbolTable, read_pclntab, read_symtab

from .conftest import Built, build

PROBED = (
    "runtime.gopark",
    "runtime.ready",
    "runtime.newproc1",
    "runtime.goexit1",
    "runtime.gcStart",
    "runtime.stopTheWorldWithSema",
    "runtime.startTheWorldWithSema",
    "runtime.gcAssistAlloc",
    "runtime.execute",
)
SPAN_END = "go.opentelemetry.io/otel/sdk/trace.(*recordingSpan).End"


def _norm(name: str) -> str:
    # .symtab spells assembly functions 'x.abi0' and '·' as '.'.
    return name.removesuffix(".abi0").replace("·", ".")


def test_pclntab_matches_symtab(dwarf_binary: Built) -> None:
    image = ElfImage.open(str(dwarf_binary.path))
    from_symtab, _ = read_symtab(image)
    from_pcln = read_pclntab(image)
    text = image.sections[".text"]
    sym = {f.entry: f for f in from_symtab if text.addr <= f.entry < text.addr + text.size}
    pcl = {f.entry: f for f in from_pcln}
    # runtime.etext is a marker symbol, not a function.
    assert {e: f.name for e, f in sym.items() if f.name != "runtime.etext"}.keys() == pcl.keys()
    for entry, f in pcl.items():
        assert _norm(f.name) == _norm(sym[entry].name), hex(entry)
        # symtab sizes exclude the alignment padding the pclntab range includes
        assert sym[entry].end <= f.end
        assert f.end - sym[entry].end < 64
        assert f.file_offset == sym[entry].file_offset
    # Duplicated names (function + ABI wrapper) resolve to the same code either way.
    st_sym = SymbolTable(image)
    for name in PROBED:
        a = st_sym.function(name)
        b = next(f for f in from_pcln if f.name == name)
        assert a is not None and a.entry == b.entry, name


def test_stripped_build_gives_the_same_probe_addresses(toolchain: str) -> None:
    """-s -w drops .symtab and DWARF but not code: every address stays put."""
    full = SymbolTable(ElfImage.open(str(build(toolchain, "otelsdk", stripped=False).path)))
    stripped_image = ElfImage.open(str(build(toolchain, "otelsdk", stripped=True).path))
    assert ".symtab" not in stripped_image.sections
    stripped = SymbolTable(stripped_image)
    assert stripped.source == "pclntab" and full.source == "symtab"
    for name in (*PROBED, SPAN_END):
        a, b = full.function(name), stripped.function(name)
        assert a is not None and b is not None, name
        assert (a.entry, a.file_offset) == (b.entry, b.file_offset), name
        assert b.size > 0


def test_file_offset_points_at_the_function_bytes(otel_stripped: Built) -> None:
    image = ElfImage.open(str(otel_stripped.path))
    f = SymbolTable(image).require("runtime.gopark")
    raw = otel_stripped.path.read_bytes()
    assert raw[f.file_offset : f.file_offset + 16] == image.read(f.entry, 16)
    assert image.offset_to_vaddr(f.file_offset) == f.entry


def test_pie_build(toolchain: str) -> None:
    """PIE: the pclntab's text base comes from moduledata, still matching .symtab."""
    d = SymbolTable(ElfImage.open(str(build(toolchain, "basic", stripped=False, pie=True).path)))
    s_image = ElfImage.open(str(build(toolchain, "basic", stripped=True, pie=True).path))
    assert s_image.elf_type == "ET_DYN"
    s = SymbolTable(s_image)
    for name in PROBED:
        assert d.require(name).entry == s.require(name).entry, name


def test_lookup_helpers(basic_stripped: Built) -> None:
    st = SymbolTable(ElfImage.open(str(basic_stripped.path)))
    f = st.require("main.worker")
    assert st.function_at(f.entry) == f and st.function_at(f.end - 1) == f
    assert st.function_at(0) is None
    assert st.function("runtime.settls") is st.function("runtime.settls.abi0")
    assert [g.name for g in st.match(r"main\.(worker|main)")] == sorted(
        ["main.worker", "main.main"], key=lambda n: st.require(n).entry
    )
    with pytest.raises(GoBinaryError, match="inlined, or not linked in"):
        st.require("runtime.goready")  # always inlined (DESIGN §5)
    assert st.data_symbol("runtime.waitReasonStrings") is None  # data needs .symtab


def test_pclntab_of_an_old_go_is_refused(basic_stripped: Built) -> None:
    data = bytearray(basic_stripped.path.read_bytes())
    image = ElfImage(bytes(data))
    off = image.sections[".gopclntab"].offset
    data[off : off + 4] = (0xFFFFFFFA).to_bytes(4, "little")  # Go 1.16 magic
    with pytest.raises(GoBinaryError, match=r"1\.16-1\.17 is not supported"):
        read_pclntab(ElfImage(bytes(data)))


def test_design_probe_points_exist_and_inlined_ones_do_not(otel_stripped: Built) -> None:
    """DESIGN §5: the probed runtime functions are symbols (also when stripped);
    goready, goparkunlock and casGToWaiting are always inlined."""
    st = SymbolTable(ElfImage.open(str(otel_stripped.path)))
    for name in (*PROBED, SPAN_END, "runtime.gcAssistAlloc1", "runtime.waitReason.String"):
        assert st.function(name) is not None, name
    for name in ("runtime.goready", "runtime.goparkunlock", "runtime.casGToWaiting"):
        assert st.function(name) is None, name
