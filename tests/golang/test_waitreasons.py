"""Wait-reason strings read from runtime.waitReasonStrings, and the release tables."""

from __future__ import annotations

from otel_goblock.golang import WAIT_REASON_TABLES, ElfImage, SymbolTable, table_for_version
from otel_goblock.golang.waitreasons import read_wait_reasons, wait_reasons

from .conftest import Built

EXPECTED = (
    "chan receive",
    "chan send",
    "select",
    "sleep",
    "sync.Mutex.Lock",
    "IO wait",
    "semacquire",
    "sync.WaitGroup.Wait",
    "GC assist marking",
    "preempted",
)


def _read(b: Built):
    image = ElfImage.open(str(b.path))
    return read_wait_reasons(image, SymbolTable(image))


def test_read_from_symtab(basic_dwarf: Built) -> None:
    wr = _read(basic_dwarf)
    assert wr is not None and wr.source == "symtab"
    assert wr.names[0] == ""
    for s in EXPECTED:
        assert s in wr.names.values(), s
    assert wr.name(250) == "unknown wait reason 250"


def test_stripped_recovers_the_array_from_code(
    toolchain: str, basic_dwarf: Built, basic_stripped: Built
) -> None:
    """No .symtab: address and length come from runtime.waitReason.String's code,
    and give exactly the table the symbol gives."""
    full, stripped = _read(basic_dwarf), _read(basic_stripped)
    assert stripped is not None and stripped.source == "code"
    assert stripped.names == full.names


def test_binary_tables_equal_the_shipped_tables(toolchain: str, otel_dwarf: Built) -> None:
    wr = _read(otel_dwarf)
    minor = int(toolchain.split(".")[1])
    assert wr.names == table_for_version((1, minor, 0))


def test_26_reordered_numbers() -> None:
    """The DESIGN §5 trap: the same reason has different numbers across releases."""
    rev = {v: {s: i for i, s in enumerate(t)} for v, t in WAIT_REASON_TABLES.items()}
    assert rev[(1, 23)]["chan receive"] == 14 and rev[(1, 26)]["chan receive"] == 19
    assert rev[(1, 23)]["trace reader (blocked)"] == 24
    assert rev[(1, 24)]["trace reader (blocked)"] == 25  # WaitGroup inserted at 24
    assert rev[(1, 24)]["sync.WaitGroup.Wait"] == 24
    assert rev[(1, 25)]["semacquire"] == 19  # GOMAXPROCS updater inserted at 18
    assert rev[(1, 26)]["semacquire"] == 13


def test_release_tables_are_consistent() -> None:
    t = WAIT_REASON_TABLES
    assert [len(t[(1, m)]) for m in range(21, 28)] == [32, 37, 38, 44, 47, 47, 47]
    for v, table in t.items():
        assert table[0] == "" and len(set(table)) == len(table), v
    # Each release only adds (1.26 reorders): earlier names survive, bar the
    # synctest strings renamed "(synctest)" -> "(durable)" in 1.25.
    for m in range(22, 28):
        prev = {s.replace("(synctest)", "(durable)") for s in t[(1, m - 1)]}
        assert prev <= set(t[(1, m)]), m
    assert sorted(t[(1, 25)]) == sorted(t[(1, 26)])
    assert table_for_version((1, 20, 0)) is None and table_for_version(None) is None


def test_fallback_to_table_when_the_binary_has_no_array(basic_stripped: Built) -> None:
    """A binary whose waitReason.String is gone (renamed here: the linker never
    drops it from a real build) falls back to the release table, then to none."""
    data = bytearray(basic_stripped.path.read_bytes())
    i = data.find(b"runtime.waitReason.String\x00")
    assert i > 0
    data[i : i + 7] = b"RUNTIME"
    image = ElfImage(bytes(data))
    st = SymbolTable(image)
    assert wait_reasons(image, st, (1, 26, 0)).source == "table"
    assert wait_reasons(image, st, (1, 26, 0)).name(19) == "chan receive"
    none = wait_reasons(image, st, (1, 40, 0))
    assert none.source == "none" and none.name(3) == "unknown wait reason 3"
