"""The parser raises CPython's young-generation GC threshold only while it parses, and
puts the previous thresholds back however the parse ends."""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator

import pytest
from otel_goblock.receivers.gotrace.parser import TraceParseError, TraceReader
from otel_goblock.receivers.gotrace.parser.gcbatch import YOUNG_THRESHOLD
from tracebuilder import Gen, build, ev


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*saved)


def _trace() -> bytes:
    g = Gen(1)
    g.batch(
        1,
        100,
        ev("GoStatus", dt=0, g=7, m=1, gstatus=2),
        ev("GoBlock", dt=10, reason_string=g.s("sleep"), stack=0),
        ev("GoUnblock", dt=10, g=7, g_seq=1, stack=0),
    )
    return build(26, g)


def test_raised_while_parsing_and_restored_at_the_end(thresholds: tuple[int, ...]) -> None:
    records = TraceReader(io.BytesIO(_trace())).records()
    next(records)
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    list(records)
    assert gc.get_threshold() == thresholds


def test_restored_when_a_parse_is_abandoned(thresholds: tuple[int, ...]) -> None:
    records = TraceReader(io.BytesIO(_trace())).records()
    next(records)
    records.close()
    assert gc.get_threshold() == thresholds


def test_restored_after_a_parse_error(thresholds: tuple[int, ...]) -> None:
    data = _trace()
    with pytest.raises(TraceParseError):
        list(TraceReader(io.BytesIO(data[:-3])).records())
    assert gc.get_threshold() == thresholds


def test_two_parses_at_once_restore_once_both_end(thresholds: tuple[int, ...]) -> None:
    a = TraceReader(io.BytesIO(_trace())).records()
    b = TraceReader(io.BytesIO(_trace())).records()
    next(a)
    next(b)
    a.close()
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD  # b still parsing
    b.close()
    assert gc.get_threshold() == thresholds


def test_collector_switched_off_is_left_alone(thresholds: tuple[int, ...]) -> None:
    gc.set_threshold(0)
    records = TraceReader(io.BytesIO(_trace())).records()
    next(records)
    assert gc.get_threshold()[0] == 0
    records.close()
    assert gc.get_threshold()[0] == 0
