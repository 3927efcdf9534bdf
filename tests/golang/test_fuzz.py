"""Truncated and corrupted binaries: GoBinaryError or a result, never another exception.

The receiver opens whatever /proc/<pid>/exe points at; a damaged file must give
one clear error, not a pyelftools/struct/capstone exception or a hang.
"""

from __future__ import annotations

import functools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_goblock.golang import ElfImage, GoBinary, GoBinaryError

from .conftest import build


@functools.cache
def _original() -> bytes:
    return build("1.26", "basic", stripped=False).path.read_bytes()


@functools.cache
def _interesting_offsets() -> tuple[int, ...]:
    """Header, section/program headers and the start of every section: where
    corruption reaches parsers rather than just changing instruction bytes."""
    data = _original()
    image = ElfImage(data)
    offs = [0, 16, 32, 40, 48, 56, 58, 60, 62]
    hdr = image.elf.header
    offs += [hdr["e_shoff"] + i for i in range(0, 64 * hdr["e_shnum"], 8)]
    offs += [hdr["e_phoff"] + i for i in range(0, 56 * hdr["e_phnum"], 8)]
    for s in image.sections.values():
        if not s.nobits and s.size:
            offs += [s.offset + i for i in (0, 4, 8, 16, 24, 32, 40, 48, 56, 64)]
    return tuple(o for o in offs if o < len(data))


def _exercise(data: bytes) -> None:
    try:
        gb = GoBinary("<fuzz>", image=ElfImage(data))
        gb.runtime_layout  # noqa: B018 - touches DWARF, wait reasons, offsets
        gb.dwarf.struct("runtime.m")
        for name in ("runtime.gopark", "main.worker"):
            if gb.symbols.function(name) is not None:
                gb.ret_probes(name)
    except GoBinaryError:
        pass


FUZZ = settings(
    max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@FUZZ
@given(cut=st.integers(min_value=0, max_value=2_500_000))
def test_truncated(cut: int) -> None:
    _exercise(_original()[:cut])


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(min_value=0, max_value=10_000), st.binary(min_size=1, max_size=8)),
        min_size=1,
        max_size=6,
    )
)
def test_corrupted_structures(edits: list[tuple[int, bytes]]) -> None:
    data = bytearray(_original())
    offs = _interesting_offsets()
    for which, payload in edits:
        at = offs[which % len(offs)]
        data[at : at + len(payload)] = payload
    _exercise(bytes(data))


@pytest.mark.parametrize("cut", [0, 4, 63, 64, 4096])
def test_tiny_prefixes_are_errors(cut: int) -> None:
    with pytest.raises(GoBinaryError):
        GoBinary("<cut>", image=ElfImage(_original()[:cut]))
