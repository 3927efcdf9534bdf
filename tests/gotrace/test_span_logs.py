"""goblocktrace span logs → span markers, and waits carried across pulled windows.

The first tests feed the converter parser records (its real input); the last one runs the
goblocktrace Go package's own test program, which records a real execution trace with a
span started on one goroutine and ended on another, and reads it with the parser.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from gotrace_fixtures import go_binary
from otel_goblock.receivers.gotrace.convert import (
    SPAN_LOG_CATEGORY,
    ParkCarry,
    SpanCarry,
    span_log_event,
    to_events,
)
from otel_goblock.receivers.gotrace.parser import ParkInterval, UserLog, parse_trace

ROOT = Path(__file__).resolve().parents[2]
TID = "0af7651916cd43dd8448eb211c80319c"
SID = "b7ad6b7169203331"
MS = 1_000_000


def log(message: str, goid: int = 7, category: str = SPAN_LOG_CATEGORY) -> UserLog:
    return UserLog(goid, 0, category, message, 1_000)


def test_end_log_is_a_span_marker_of_the_logging_goroutine() -> None:
    e = span_log_event(log(f"end {TID} {SID}", goid=19), pid=4242)
    assert e is not None
    assert (e.kind, e.pid, e.goid, e.tid, e.start_ns, e.end_ns) == (
        "span_marker",
        4242,
        19,
        0,
        1_000,
        1_000,
    )
    assert e.attrs == {"trace_id": TID, "span_id": SID, "phase": "end"}
    assert e.source == "gotrace"


def test_start_log_is_a_span_start() -> None:
    e = span_log_event(log(f"start {TID} {SID}"), pid=1)
    assert e is not None and e.kind == "span_start" and e.attrs["phase"] == "start"


def test_ids_are_normalized_to_lower_case() -> None:
    e = span_log_event(log(f"end {TID.upper()} {SID.upper()}"), pid=1)
    assert e is not None and e.attrs["trace_id"] == TID and e.attrs["span_id"] == SID


@pytest.mark.parametrize(
    "message",
    [
        f"end {TID}",
        f"end {TID} {SID} extra",
        f"stop {TID} {SID}",
        f"end {TID[:-1]} {SID}",
        f"end {TID} {SID}0",
        f"end {'g' * 32} {SID}",
        f"end {'0' * 32} {SID}",
        f"end {TID} {'0' * 16}",
        "",
    ],
)
def test_malformed_span_logs_are_ignored(message: str) -> None:
    assert span_log_event(log(message), pid=1) is None


def test_other_categories_and_goroutine_zero_are_ignored() -> None:
    assert span_log_event(log(f"end {TID} {SID}", category="app"), pid=1) is None
    assert span_log_event(log(f"end {TID} {SID}", goid=0), pid=1) is None


def park(goid: int, a_ms: int, b_ms: int, reason: str, start_known=True, end_known=True):
    return ParkInterval(goid, a_ms * MS, b_ms * MS, reason, 0, start_known, end_known)


def test_a_wait_across_two_windows_goes_out_whole_with_its_reason() -> None:
    carry = ParkCarry()
    carry.next_window()
    first = list(to_events([park(5, 100, 1000, "select", end_known=False)], 1, 0, carry))
    assert first == []  # held: still open when the window ended
    carry.next_window()
    # Go gives no reason for a goroutine already waiting when the next trace starts
    second = list(to_events([park(5, 1002, 1080, "", start_known=False)], 1, 0, carry))
    assert len(second) == 1
    e = second[0]
    assert (e.start_ns, e.end_ns, e.attrs["reason"]) == (100 * MS, 1080 * MS, "select")
    assert "clipped" not in e.attrs  # both ends were seen


def test_a_wait_across_three_windows_goes_out_once() -> None:
    carry = ParkCarry()
    out = []
    for window in (
        [park(5, 0, 1000, "chan receive", end_known=False)],
        [park(5, 1001, 2000, "", start_known=False, end_known=False)],
        [park(5, 2001, 2050, "", start_known=False)],
    ):
        carry.next_window()
        out += list(to_events(window, 1, 0, carry))
    assert [(e.start_ns, e.end_ns, e.attrs["reason"]) for e in out] == [
        (0, 2050 * MS, "chan receive")
    ]


def test_a_held_wait_not_continued_goes_out_clipped() -> None:
    carry = ParkCarry()
    carry.next_window()
    list(to_events([park(5, 0, 1000, "sleep", end_known=False)], 1, 0, carry))
    carry.next_window()  # the next window does not have goroutine 5 waiting
    out = list(to_events([park(6, 1001, 1002, "chan send")], 1, 0, carry))
    held = [e for e in out if e.goid == 5]
    assert [(e.start_ns, e.end_ns, e.attrs["clipped"]) for e in held] == [(0, 1000 * MS, True)]


def test_no_bridge_over_a_long_gap_or_without_carry() -> None:
    carry = ParkCarry()
    carry.next_window()
    list(to_events([park(5, 0, 1000, "sleep", end_known=False)], 1, 0, carry))
    carry.next_window()  # a failed fetch: the next window starts 5 s later
    late = list(to_events([park(5, 6000, 6050, "", start_known=False)], 1, 0, carry))
    by_start = {e.start_ns: e.attrs["reason"] for e in late}
    assert by_start == {0: "sleep", 6000 * MS: "unknown"}  # two pieces, not bridged
    alone = list(to_events([park(5, 6000, 6050, "", start_known=False)], 1, 0))
    assert alone[0].attrs["reason"] == "unknown"


def span_logs(*items: tuple[str, int, int]) -> list[UserLog]:
    """(phase, span number, goid) → the span logs, ids derived from the number."""
    return [
        UserLog(g, 0, SPAN_LOG_CATEGORY, f"{ph} {TID} {n:016x}", 1_000 + i)
        for i, (ph, n, g) in enumerate(items)
    ]


def markers(events: list) -> dict[int, tuple[int, str]]:
    return {
        int(e.attrs["span_id"], 16): (e.goid, e.attrs["phase"])
        for e in events
        if e.kind == "span_marker"
    }


def test_a_span_whose_end_fell_between_windows_joins_by_its_start() -> None:
    spans = SpanCarry()
    # window 1: span 1 starts and ends; span 2 starts, its end falls in the gap;
    # span 3 starts and is still running
    w1 = list(
        to_events(
            span_logs(("start", 1, 5), ("end", 1, 5), ("start", 2, 6), ("start", 3, 7)),
            1,
            spans=spans,
        )
    )
    assert markers(w1) == {1: (5, "end")}
    # window 2: span 3 ends (on another goroutine); nothing of span 2
    w2 = list(to_events(span_logs(("end", 3, 8)), 1, spans=spans))
    assert markers(w2) == {3: (8, "end"), 2: (6, "start")}  # span 2's stand-in
    w3 = list(to_events([], 1, spans=spans))
    assert markers(w3) == {}  # nothing carried twice


def test_no_stand_in_without_the_carry() -> None:
    events = list(to_events(span_logs(("start", 2, 6)), 1))
    assert markers(events) == {}


def test_real_trace_span_started_and_ended_on_different_goroutines(tmp_path: Path) -> None:
    """goblocktrace's TestCrossGoroutineTrace starts a span on one goroutine, hands it to
    another that sleeps then ends it: the start log and the end log name two goroutines,
    and the ender's sleep is in the same trace."""
    out = tmp_path / "cross.trace"
    env = dict(os.environ, GOBLOCKTRACE_TRACE_OUT=str(out), GOFLAGS="-mod=readonly")
    subprocess.run(
        [go_binary(), "test", "-count=1", "-run", "TestCrossGoroutineTrace", "."],
        cwd=ROOT / "examples" / "goblocktrace",
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    records = list(parse_trace(out))
    events = list(to_events(records, 1))
    starts = [e for e in events if e.kind == "span_start"]
    ends = [e for e in events if e.kind == "span_marker"]
    assert len(starts) == 1 and len(ends) == 1
    assert starts[0].attrs["span_id"] == ends[0].attrs["span_id"]
    assert starts[0].goid != ends[0].goid
    sleeps = [
        e
        for e in events
        if e.kind == "park" and e.goid == ends[0].goid and e.attrs["reason"] == "sleep"
    ]
    assert sleeps and starts[0].start_ns <= sleeps[0].start_ns <= ends[0].start_ns
