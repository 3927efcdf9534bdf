"""The parser finds exactly what the scenario program did, with Go 1.26 and Go 1.27.3.

Ground truth comes from the program itself: each scenario goroutine announces itself with
trace.Log("scenario", name) and logs the duration it measured ("elapsed_ns"). A park must
lie between the nominal wait (-10%) and that measurement.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from conftest import ScenarioTrace
from otel_goblock.receivers.gotrace.parser import (
    GCInterval,
    Lineage,
    ParkInterval,
    Record,
    STWInterval,
    TraceReader,
    UserLog,
    UserRegion,
    UserTask,
)

SPAN_HEX = "00f067aa0ba902b7"
N_CHILDREN = 7
SCENARIOS = ("sleep", "chan", "mutex", "select", "cond", "net", "spawn", "region", "gc")
MS = 1_000_000


@pytest.fixture(scope="module")
def parsed(scenario_trace: ScenarioTrace) -> tuple[TraceReader, list[Record]]:
    with open(scenario_trace.path, "rb") as f:
        reader = TraceReader(f)
        return reader, list(reader.records())


def _scenarios(records: list[Record]) -> tuple[dict[str, int], dict[int, int]]:
    goids = {}
    elapsed = {}
    for r in records:
        if isinstance(r, UserLog) and r.category == "scenario":
            goids[r.message] = r.goid
        if isinstance(r, UserLog) and r.category == "elapsed_ns":
            elapsed[r.goid] = int(r.message)
    return goids, elapsed


def _parks(records: list[Record], goid: int) -> list[ParkInterval]:
    return [r for r in records if isinstance(r, ParkInterval) and r.goid == goid]


def test_header_version_and_wall_clock(parsed, scenario_trace: ScenarioTrace) -> None:
    reader, records = parsed
    assert reader.version == 26  # Go 1.27 still writes the Go 1.26 wire format
    assert reader.clock == "wall"  # Go 1.25+ traces carry a ClockSnapshot
    times = [r.time_ns if hasattr(r, "time_ns") else r.start_ns for r in records]
    assert scenario_trace.wall_before_ns <= min(times)
    assert max(times) <= scenario_trace.wall_after_ns


def test_each_scenario_ran_on_its_own_goroutine(parsed) -> None:
    goids, elapsed = _scenarios(parsed[1])
    assert set(goids) == set(SCENARIOS)
    assert len(set(goids.values())) == len(SCENARIOS)
    assert set(elapsed) == set(goids.values())


@pytest.mark.parametrize(
    ("scenario", "reason", "nominal_ms"),
    [
        ("sleep", "sleep", 50),
        ("chan", "chan receive", 30),
        ("mutex", "sync", 20),
        ("select", "select", 25),
        ("cond", "sync.(*Cond).Wait", 15),
        ("net", "network", 25),
    ],
)
def test_blocking_scenario_parks_with_reason_and_duration(
    parsed, scenario: str, reason: str, nominal_ms: int
) -> None:
    goids, elapsed = _scenarios(parsed[1])
    g = goids[scenario]
    long_parks = [p for p in _parks(parsed[1], g) if p.end_ns - p.start_ns >= MS]
    assert len(long_parks) == 1, long_parks
    park = long_parks[0]
    assert park.reason == reason
    assert park.start_known and park.end_known
    duration = park.end_ns - park.start_ns
    measured = elapsed[g]
    # The park is bounded by ground truth on both sides: at least the nominal wait less
    # 10% — or what the goroutine measured, when that is shorter: the waker's timer starts
    # when main spawns the scenario, so a goroutine that ran late (a loaded machine, CI)
    # blocks for less than nominal — and at most what the goroutine itself measured around
    # the blocking call (which adds the run-queue wait after the wake-up: large on a loaded
    # machine, so ±10% of it is not a fair bound there). On an idle machine both are
    # within 10%.
    low = 0.9 * min(nominal_ms * MS, measured)
    assert low <= duration <= measured + 200_000, (duration, measured)


def test_channel_park_names_its_unblocker(parsed) -> None:
    goids, _ = _scenarios(parsed[1])
    park = max(_parks(parsed[1], goids["chan"]), key=lambda p: p.end_ns - p.start_ns)
    # time.AfterFunc's goroutine sends on the channel: a real goroutine, not the runtime.
    assert park.unblocked_by not in (0, goids["chan"])


def test_spawned_children_link_to_their_parent(parsed) -> None:
    goids, _ = _scenarios(parsed[1])
    children = [
        r.child_goid
        for r in parsed[1]
        if isinstance(r, Lineage) and r.parent_goid == goids["spawn"]
    ]
    assert len(children) == N_CHILDREN
    assert len(set(children)) == N_CHILDREN
    # Every scenario goroutine was created by main (goid 1), which calls scenario().
    parent_of = {r.child_goid: r.parent_goid for r in parsed[1] if isinstance(r, Lineage)}
    for name in SCENARIOS:
        assert parent_of[goids[name]] == 1, name


def test_span_region_and_log_carry_the_span_id_on_the_right_goroutine(parsed) -> None:
    goids, elapsed = _scenarios(parsed[1])
    g = goids["region"]
    regions = [r for r in parsed[1] if isinstance(r, UserRegion)]
    assert [(r.name, r.goid) for r in regions] == [(f"span:{SPAN_HEX}", g)]
    region = regions[0]
    assert 10 * MS <= region.end_ns - region.start_ns <= elapsed[g] + 200_000
    logs = [r for r in parsed[1] if isinstance(r, UserLog) and r.category == "span"]
    assert [(r.message, r.goid) for r in logs] == [(SPAN_HEX, g)]
    assert region.start_ns <= logs[0].time_ns <= region.end_ns
    # The sleep inside the region is a park of the same goroutine inside the region.
    inner = [p for p in _parks(parsed[1], g) if p.reason == "sleep"]
    assert len(inner) == 1
    assert region.start_ns <= inner[0].start_ns <= inner[0].end_ns <= region.end_ns


def test_task_spans_all_scenarios(parsed) -> None:
    tasks = [r for r in parsed[1] if isinstance(r, UserTask)]
    assert [(t.name, t.goid, t.start_known, t.end_known) for t in tasks] == [
        ("scenarios", 1, True, True)
    ]
    logs = [r for r in parsed[1] if isinstance(r, UserLog)]
    assert all(r.task_id == tasks[0].task_id for r in logs)
    assert all(tasks[0].start_ns <= r.time_ns <= tasks[0].end_ns for r in logs)


def test_explicit_gc_gives_gc_and_stw_ranges(parsed) -> None:
    goids, _ = _scenarios(parsed[1])
    gcs = [r for r in parsed[1] if isinstance(r, GCInterval)]
    assert len(gcs) >= 1
    assert all(g.start_known and g.end_known and g.end_ns > g.start_ns for g in gcs)
    stws = [r for r in parsed[1] if isinstance(r, STWInterval)]
    reasons = Counter(s.reason for s in stws)
    assert reasons["GC sweep termination"] >= 1
    assert reasons["GC mark termination"] >= 1
    assert reasons["start trace"] == 1
    # runtime.GC() stops the world from the "gc" scenario goroutine itself.
    sweep_term = [s for s in stws if s.reason == "GC sweep termination"]
    assert any(s.goid == goids["gc"] for s in sweep_term)
    # Stop-the-world pauses happen inside the GC cycle they belong to.
    for s in stws:
        if s.reason.startswith("GC "):
            assert any(g.start_ns <= s.start_ns <= g.end_ns for g in gcs), s


def test_intervals_are_well_formed(parsed) -> None:
    by_kind: dict[str, int] = defaultdict(int)
    for r in parsed[1]:
        by_kind[type(r).__name__] += 1
        if hasattr(r, "end_ns"):
            assert r.end_ns >= r.start_ns, r
    assert by_kind["ParkInterval"] >= 5
