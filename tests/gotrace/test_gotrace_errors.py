"""Bad input: unsupported versions, truncated and corrupt traces.

Contract: every failure is a TraceParseError (UnsupportedTraceVersion for versions this
parser does not read), never another exception and never a hang; records of the complete
generations before the damage have already been yielded when the error is raised.
"""

from __future__ import annotations

import io
import re
from functools import cache

import pytest
from gotrace_fixtures import goroot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from otel_goblock.receivers.gotrace.parser import (
    SUPPORTED_VERSIONS,
    TraceParseError,
    TraceReader,
    UnsupportedTraceVersion,
    parse_trace,
)
from otel_goblock.receivers.gotrace.parser.textformat import read_txtar, text_to_bytes
from otel_goblock.receivers.gotrace.parser.wire import BatchReader

TESTDATA = goroot("local") / "src/internal/trace/testdata/tests"


@cache
def _go_text_trace(name: str) -> bytes:
    return text_to_bytes(read_txtar((TESTDATA / f"{name}.test").read_text())["trace"])


def _old_traces() -> list:
    return sorted((goroot("local") / "src/internal/trace/internal/tracev1/testdata").iterdir())


@pytest.mark.parametrize("path", _old_traces(), ids=lambda p: p.name)
def test_pre_122_traces_are_rejected_by_name(path) -> None:
    with pytest.raises(UnsupportedTraceVersion) as e:
        TraceReader(io.BytesIO(path.read_bytes()))
    minor = re.search(r"_1_(\d+)_", path.name).group(1)  # e.g. stress_1_19_good
    assert e.value.version == f"go 1.{minor}"
    assert f"go 1.{minor}" in str(e.value)
    assert all(v in str(e.value) for v in SUPPORTED_VERSIONS)


@pytest.mark.parametrize("minor", [24, 27, 28, 100])
def test_unknown_versions_are_rejected(minor: int) -> None:
    # 1.24 writes the 1.23 format and 1.27 the 1.26 one: their own numbers never appear
    # in a header, so a header naming them (or a future version) is not a known layout.
    head = f"go 1.{minor} trace\x00\x00\x00".encode()
    with pytest.raises(UnsupportedTraceVersion, match=rf"go 1\.{minor}\b"):
        TraceReader(io.BytesIO(head + b"\x01" * 32))


@pytest.mark.parametrize("data", [b"", b"hello, world", b"go 1.26 trace", b"\x00" * 64])
def test_non_traces_raise_trace_parse_error(data: bytes) -> None:
    with pytest.raises(TraceParseError) as e:
        list(parse_trace(io.BytesIO(data)))
    assert not isinstance(e.value, UnsupportedTraceVersion)


def test_go_failure_testdata_with_broken_framing_raises() -> None:
    # Go's test expects its parser to reject this trace; its batch claims 50 bytes that
    # are not there, which is a framing error for us too.
    with pytest.raises(TraceParseError, match="truncated batch"):
        list(parse_trace(io.BytesIO(_go_text_trace("go122-fail-first-gen-first"))))


def test_semantically_inconsistent_trace_is_tolerated() -> None:
    # Go rejects this trace ("expected a proc but didn't have one"): a scheduler-state
    # violation. This parser does not validate scheduler state; it reads the events.
    records = list(parse_trace(io.BytesIO(_go_text_trace("go122-create-syscall-with-p"))))
    assert isinstance(records, list)


def _generation_starts(data: bytes) -> list[int]:
    """Byte offsets where each generation's first batch starts (Go 1.26: after markers)."""
    reader = BatchReader(io.BytesIO(data))
    starts = [reader.offset]
    while (b := reader.next_batch()) is not None:
        if b.end_of_generation:
            starts.append(reader.offset)
    return starts[:-1]


def test_truncated_trace_keeps_every_complete_generation(multigen_trace: bytes) -> None:
    starts = _generation_starts(multigen_trace)
    assert len(starts) >= 3
    last = starts[-1]
    complete = list(parse_trace(io.BytesIO(multigen_trace[:last])))
    partial = []
    with pytest.raises(TraceParseError, match=r"truncated|incomplete"):
        for r in parse_trace(io.BytesIO(multigen_trace[: len(multigen_trace) - 1])):
            partial.append(r)
    # Everything of the complete generations came out before the error; what the clean
    # cut adds on top are only the still-open intervals flushed at the end.
    assert partial == complete[: len(partial)]
    assert all(not getattr(r, "end_known", True) for r in complete[len(partial) :])
    ticks = [r for r in partial if getattr(r, "category", "") == "tick"]
    assert len(ticks) >= 50


@cache
def _corpus() -> tuple[bytes, ...]:
    return tuple(
        _go_text_trace(n)
        for n in ("go122-annotations", "go122-task-across-generations", "go123-sync", "go125-sync")
    )


def _parse_all(data: bytes) -> None:
    try:
        for _ in parse_trace(io.BytesIO(data)):
            pass
    except TraceParseError:
        pass


_settings = settings(
    max_examples=150,
    deadline=5000,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


@_settings
@given(which=st.integers(0, 4), cut=st.floats(0, 1))
def test_truncation_anywhere_raises_only_trace_parse_error(
    multigen_trace: bytes, which: int, cut: float
) -> None:
    data = (*_corpus(), multigen_trace)[which]
    _parse_all(data[: int(len(data) * cut)])


@_settings
@given(
    which=st.integers(0, 4),
    flips=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8
    ),
)
def test_corruption_raises_only_trace_parse_error(
    multigen_trace: bytes, which: int, flips: list[tuple[float, int]]
) -> None:
    data = bytearray((*_corpus(), multigen_trace)[which])
    for where, value in flips:
        data[int(where * len(data))] = value
    _parse_all(bytes(data))


@_settings
@given(tail=st.binary(max_size=4096), minor=st.sampled_from([22, 23, 25, 26]))
def test_random_bytes_after_a_valid_header(tail: bytes, minor: int) -> None:
    _parse_all(f"go 1.{minor} trace\x00\x00\x00".encode() + tail)
