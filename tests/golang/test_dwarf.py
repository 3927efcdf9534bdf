"""Struct layouts from DWARF: runtime.g/m, the OTel SDK span, versus DESIGN §5."""

from __future__ import annotations

import pytest

from otel_goblock.golang import RUNTIME_OFFSETS, DwarfTypes, ElfImage, GoBinaryError

from .conftest import Built

RECORDING_SPAN = "go.opentelemetry.io/otel/sdk/trace.recordingSpan"
SPAN_CONTEXT = "go.opentelemetry.io/otel/trace.SpanContext"
# DESIGN §5 for Go 1.25-1.26.
DESIGN_126 = {"goid": 152, "atomicstatus": 144, "waitreason": 176, "m": 48}


def _dwarf(b: Built) -> DwarfTypes:
    return DwarfTypes(ElfImage.open(str(b.path)))


def test_runtime_g_and_m_offsets(otel_dwarf: Built) -> None:
    dw = _dwarf(otel_dwarf)
    assert dw.available
    g = dw.struct("runtime.g")
    assert g is not None
    got = {name: g.field(name).offset for name in DESIGN_126}
    procid = dw.offset("runtime.m", "procid")
    table = RUNTIME_OFFSETS[(1, int(otel_dwarf.toolchain.split(".")[1]))]
    if otel_dwarf.toolchain == "1.26":
        assert got == DESIGN_126 and procid == 64
    # 1.27 is newer than DESIGN: DWARF must agree with the table entry we ship.
    assert {f"g.{k}": v for k, v in got.items()} | {"m.procid": procid} == table
    # self-consistency: sizes and types the probes rely on
    assert g.field("goid").size == 8 and g.field("goid").type_name == "uint64"
    assert g.field("atomicstatus").size == 4
    assert (
        g.field("waitreason").size == 1 and g.field("waitreason").type_name == "runtime.waitReason"
    )
    assert g.field("m").type_name == "*runtime.m" and g.field("m").size == 8
    offsets = [f.offset for f in g.fields]
    assert offsets == sorted(offsets) and all(o < g.size for o in offsets)


def test_span_context_offsets(otel_dwarf: Built) -> None:
    dw = _dwarf(otel_dwarf)
    sc = dw.struct(SPAN_CONTEXT)
    assert sc is not None
    assert (sc.field("traceID").offset, sc.field("traceID").size) == (0, 16)
    assert (sc.field("spanID").offset, sc.field("spanID").size) == (16, 8)
    base = dw.offset(RECORDING_SPAN, "spanContext")
    assert base is not None and base > 0
    assert dw.offset(RECORDING_SPAN, "spanContext.traceID") == base
    assert dw.offset(RECORDING_SPAN, "spanContext.spanID") == base + 16
    assert dw.struct(RECORDING_SPAN).field("spanContext").type_name == SPAN_CONTEXT


def test_paths_through_pointers_and_missing_things(otel_dwarf: Built) -> None:
    dw = _dwarf(otel_dwarf)
    with pytest.raises(GoBinaryError, match="is a pointer"):
        dw.offset("runtime.g", "m.procid")
    assert dw.offset("runtime.g", "nosuchfield") is None
    assert dw.struct("golang.org/x/net/http2.GoAwayFrame") is None  # grpc not linked in
    assert dw.struct("uint64") is None  # a type, but not a struct
    # cached: the same object comes back
    assert dw.struct("runtime.g") is dw.struct("runtime.g")


def test_stripped_has_no_dwarf(otel_stripped: Built) -> None:
    dw = _dwarf(otel_stripped)
    assert not dw.available
    assert dw.struct("runtime.g") is None and dw.offset("runtime.g", "goid") is None


def test_slow_path_finds_the_same_layout(basic_dwarf: Built) -> None:
    """The full-walk index (used when the name search misses) agrees with the fast path."""
    fast = _dwarf(basic_dwarf)
    slow = _dwarf(basic_dwarf)
    die = slow._slow_lookup("runtime.m")
    assert die is not None and die.tag == "DW_TAG_structure_type"
    assert slow._layout("runtime.m", die) == fast.struct("runtime.m")
