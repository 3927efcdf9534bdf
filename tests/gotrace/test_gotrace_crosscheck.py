"""The Python parser agrees with Go's own parsers on the same files.

- wire level: per-event-type counts equal those of `go tool trace -d=wire`;
- semantic level: every goroutine block (Running → Waiting, with its reason and exact
  trace-clock time) that Go's parser (golang.org/x/exp/trace, in fixtures/goparse)
  reports is a ParkInterval of ours, and nothing more; user logs/regions/tasks agree too.

Run on the fresh Go 1.26 / 1.27.3 traces, and on every successful trace of Go's own test
data (Go 1.22, 1.23 and 1.25 formats), encoded from its text form.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import pytest
from conftest import ScenarioTrace
from gotrace_fixtures import go_parse, go_tool_trace_wire, goroot
from otel_goblock.receivers.gotrace.parser import (
    ParkInterval,
    TraceReader,
    UserLog,
    UserRegion,
    UserTask,
)
from otel_goblock.receivers.gotrace.parser.spec import name_to_type, spec_args
from otel_goblock.receivers.gotrace.parser.textformat import read_txtar, text_to_bytes

# Timed events of event batches (ClockSnapshot is timed but lives in the sync batch,
# which the reader consumes as generation metadata, not as an event).
_TIMED = {n for n, t in name_to_type().items() if spec_args(t)[:1] == ("dt",)} - {"ClockSnapshot"}


def _wire_counts(text: str) -> Counter[str]:
    return Counter(tok for line in text.splitlines() if (tok := line.split(" ", 1)[0]) in _TIMED)


def _ours(data: bytes) -> tuple[TraceReader, list]:
    reader = TraceReader(io.BytesIO(data), clock="trace")
    return reader, list(reader.records())


def _parks(records: list) -> Counter[tuple[int, int, str]]:
    # Parks whose start is a real block event (not a goroutine already waiting at the
    # start of the trace, which Go reports as Undetermined → Waiting).
    return Counter(
        (r.goid, r.start_ns, r.reason)
        for r in records
        if isinstance(r, ParkInterval) and r.start_known
    )


_TIE_TOLERANCE_NS = 1000


def _pair_up(ours: Counter, theirs: Counter, tolerance_ns: int) -> bool:
    """Every (goid, time, reason) of ours matches one of theirs within the tolerance."""
    by_key: dict[tuple[int, str], list[int]] = {}
    for g, t, r in theirs.elements():
        by_key.setdefault((g, r), []).append(t)
    mine: dict[tuple[int, str], list[int]] = {}
    for g, t, r in ours.elements():
        mine.setdefault((g, r), []).append(t)
    if by_key.keys() != mine.keys():
        return False
    for key, times in mine.items():
        other = by_key[key]
        if len(times) != len(other):
            return False
        for a, b in zip(sorted(times), sorted(other), strict=True):
            if abs(a - b) > tolerance_ns:
                return False
    return True


def _check_against_go(path: Path, data: bytes, toolchain: str) -> None:
    _, records = _ours(data)
    go = go_parse(path, parks=True, toolchain=toolchain)
    go_parks = Counter((g, t, reason) for g, t, reason in go["parks"])
    ours = _parks(records)
    assert sum(ours.values()) == sum(go_parks.values())
    assert Counter(r for _, _, r in ours.elements()) == Counter(go["block_reasons"])
    # Times agree to the ns except where several events share one clock tick: Go breaks
    # those ties by its ordering heap, we by M id (both then add +1 ns per tied event).
    assert _pair_up(ours, go_parks, tolerance_ns=_TIE_TOLERANCE_NS)
    kinds = Counter(type(r).__name__ for r in records)
    assert kinds["UserLog"] == go["kinds"].get("Log", 0)
    assert kinds["UserRegion"] == go["kinds"].get("RegionBegin", 0)
    # One UserTask per task seen begun, ended, or both (a task can begin before the
    # trace starts, or end after it stops).
    begins, ends = go["kinds"].get("TaskBegin", 0), go["kinds"].get("TaskEnd", 0)
    assert max(begins, ends) <= kinds["UserTask"] <= begins + ends
    assert sum(go["block_reasons"].values()) == len(go["parks"])


def test_wire_counts_match_go_tool_trace(scenario_trace: ScenarioTrace) -> None:
    data = scenario_trace.path.read_bytes()
    reader = TraceReader(io.BytesIO(data), clock="trace")
    for _ in reader.raw_events():
        pass
    expected = _wire_counts(go_tool_trace_wire(scenario_trace.path, scenario_trace.toolchain))
    assert Counter(reader.event_counts()) == expected


def test_parks_and_annotations_match_go_parser(scenario_trace: ScenarioTrace) -> None:
    _check_against_go(
        scenario_trace.path, scenario_trace.path.read_bytes(), scenario_trace.toolchain
    )


def test_user_records_match_between_clocks(scenario_trace: ScenarioTrace) -> None:
    """Wall and trace clock differ by one offset per generation, nothing else."""
    data = scenario_trace.path.read_bytes()
    trace_recs = list(TraceReader(io.BytesIO(data), clock="trace").records())
    wall_recs = list(TraceReader(io.BytesIO(data)).records())
    assert len(trace_recs) == len(wall_recs)
    offsets = {
        w.time_ns - t.time_ns
        for t, w in zip(trace_recs, wall_recs, strict=True)
        if isinstance(t, UserLog)
    }
    assert len(offsets) == 1  # one generation in these traces


def _go_testdata_accepted() -> list[Path]:
    """Go's own trace tests whose parser accepts them: the ones it rejects have no Go
    output to compare with (test_gotrace_errors covers what ours does with them)."""
    tests = sorted((goroot("local") / "src/internal/trace/testdata/tests").glob("*.test"))
    return [p for p in tests if read_txtar(p.read_text())["expect"].startswith("SUCCESS")]


@pytest.mark.parametrize("test_file", _go_testdata_accepted(), ids=lambda p: p.stem)
def test_go_testdata_matches_go_parser(test_file: Path, tmp_path: Path) -> None:
    archive = read_txtar(test_file.read_text())
    data = text_to_bytes(archive["trace"])
    path = tmp_path / "t.trace"
    path.write_bytes(data)
    _check_against_go(path, data, "local")
    # and the wire counts are those of the text itself
    reader = TraceReader(io.BytesIO(data))
    for _ in reader.raw_events():
        pass
    assert Counter(reader.event_counts()) == _wire_counts(archive["trace"])


def test_records_cover_tasks_and_regions_in_go_annotations_test() -> None:
    archive = read_txtar(
        (
            goroot("local") / "src/internal/trace/testdata/tests" / "go122-annotations.test"
        ).read_text()
    )
    _, records = _ours(text_to_bytes(archive["trace"]))
    assert any(isinstance(r, UserTask) for r in records)
    assert any(isinstance(r, UserRegion) for r in records)
