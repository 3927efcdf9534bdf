"""Go runtime uprobes on a real Go program built with the real OTel Go SDK.

The fixture (fixtures/parker) runs one SDK span per scenario and prints the span's ids and
its goroutine id; the probes must report the same ids, the right wait reasons and the
injected durations.
"""

from __future__ import annotations

import ctypes as ct
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gotools import go_build
from otel_goblock.receivers.ebpf.decode import (
    GO_ASSIST,
    GO_LINEAGE,
    GO_PARK,
    GO_SPAN_END,
    GO_STW,
    unpack_go,
)
from otel_goblock.receivers.ebpf.goruntime import GoRuntimeProbes, plan_for

FIXTURES = Path(__file__).parent / "fixtures"
MS = 40


# the machine's Go and the one other toolchain the module proxy serves here; 1.27 is
# newer than any offset table, so it proves the DWARF path
TOOLCHAINS = ["", "go1.27.3"]


@pytest.fixture(scope="module", params=TOOLCHAINS, ids=["go-local", "go1.27.3"])
def parker(request: pytest.FixtureRequest) -> Path:
    return go_build(FIXTURES, "./parker", f"parker{request.param}", toolchain=request.param)


@pytest.fixture(scope="module")
def parker_stripped() -> Path:
    return go_build(FIXTURES, "./parker", "parker-stripped", ldflags="-s -w")


@pytest.fixture(scope="module")
def bpf():  # type: ignore[no-untyped-def]
    from otel_goblock.receivers.ebpf.btf import task_fsbase_offset
    from otel_goblock.receivers.ebpf.program import Program, ProgramOptions

    # the receiver's own module composition, with only the Go runtime concern
    prog = Program(
        ProgramOptions(
            syscalls=False,
            sched=False,
            tcp=False,
            goruntime=True,
            fsbase_offset=task_fsbase_offset(),
        )
    )
    b = prog.bpf
    b.received = []  # a ring buffer opens once per map: one callback feeds every test

    def on_event(_ctx, data, size):  # type: ignore[no-untyped-def]
        start, end, goid, aux, pid, _tid, kind, reason, _flags, trace_id, span_id = unpack_go(
            ct.string_at(data, size)
        )
        b.received.append(
            {
                "kind": kind,
                "goid": goid,
                "aux": aux,
                "reason": reason,
                "ms": (end - start) / 1e6,
                "trace_id": trace_id.hex(),
                "span_id": span_id.hex(),
                "pid": pid,
            }
        )

    b["go_events"].open_ring_buffer(on_event)
    yield b
    prog.close()


def run_observed(b, exe: Path, families: set[str], *args: str):  # type: ignore[no-untyped-def]
    """Start the fixture, attach before it works, return (its report lines, go events)."""
    p = subprocess.Popen(
        [str(exe), "-ms", str(MS), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None and p.stdin is not None
    assert json.loads(p.stdout.readline()) == {"ready": True}
    probes = GoRuntimeProbes(b, families, park_threshold_ns=1_000_000)
    try:
        plan = probes.attach(p.pid, str(exe))
        b.ring_buffer_consume()  # records mostly do not wake a poller (goblock.h)
        b.received.clear()
        p.stdin.write("go\n")
        p.stdin.flush()
        lines = [json.loads(x) for x in p.stdout.read().splitlines() if x.strip()]
        assert p.wait(30) == 0
        b.ring_buffer_poll(50)
        b.ring_buffer_consume()
        events = [e for e in b.received if e["pid"] == p.pid]
    finally:
        probes.close()
        if p.poll() is None:
            p.kill()
    return plan, lines, events


@pytest.mark.ebpf
def test_goroutine_parks_have_the_right_reason_and_duration(bpf, parker: Path) -> None:
    plan, lines, events = run_observed(bpf, parker, {"parks", "lineage"})
    parks = [e for e in events if e["kind"] == GO_PARK]
    by_scenario = {x["scenario"]: x for x in lines}
    handler = by_scenario["sleep"]["goid"]
    expected = {"sleep": "sleep", "chan": "chan receive", "mutex": "sync.Mutex.Lock"}
    for scenario, reason in expected.items():
        mine = [
            e
            for e in parks
            if e["goid"] == by_scenario[scenario]["goid"]
            and plan.wait_reasons.get(e["reason"]) == reason
        ]
        assert mine, f"{scenario}: no {reason!r} park on goroutine {handler}: {parks}"
        longest = max(e["ms"] for e in mine)
        assert MS * 0.9 <= longest <= MS * 1.1 + 2, (scenario, longest)


@pytest.mark.ebpf
def test_span_markers_carry_the_sdk_ids_and_goroutine(bpf, parker: Path) -> None:
    _, lines, events = run_observed(bpf, parker, {"span_markers"})
    markers = {(e["trace_id"], e["span_id"]): e["goid"] for e in events if e["kind"] == GO_SPAN_END}
    for x in lines:
        assert markers.get((x["trace_id"], x["span_id"])) == x["goid"], x


@pytest.mark.ebpf
def test_lineage_links_children_to_the_spawning_goroutine(bpf, parker: Path) -> None:
    _, _lines, events = run_observed(bpf, parker, {"lineage"})
    children_of_main = {e["goid"] for e in events if e["kind"] == GO_LINEAGE and e["aux"] == 1}
    # the chan and mutex scenarios each start one helper goroutine from goroutine 1
    assert len(children_of_main) >= 2
    assert all(g > 1 for g in children_of_main)


@pytest.mark.ebpf
def test_gc_stop_the_world_is_seen_with_its_reason(bpf, parker: Path) -> None:
    plan, _, events = run_observed(bpf, parker, {"gc"})
    stws = [plan.stw_reasons.get(e["reason"], "") for e in events if e["kind"] == GO_STW]
    assert any("GC" in r for r in stws), stws
    assert all(e["ms"] < 100 for e in events if e["kind"] in (GO_STW, GO_ASSIST))


@pytest.mark.ebpf
def test_stripped_binary_uses_the_version_table_and_says_what_is_lost(
    bpf, parker: Path, parker_stripped: Path
) -> None:
    full, stripped = plan_for(str(parker)), plan_for(str(parker_stripped))
    assert stripped.goid_offset == full.goid_offset
    assert stripped.span_ctx_offset == 0
    assert any("span markers" in d and "lost" in d for d in stripped.degraded)
    _plan, lines, events = run_observed(bpf, parker_stripped, {"parks", "span_markers"})
    assert not [e for e in events if e["kind"] == GO_SPAN_END]
    sleeps = [
        e
        for e in events
        if e["kind"] == GO_PARK and e["goid"] == lines[0]["goid"] and e["ms"] >= MS * 0.9
    ]
    assert sleeps, "parks must still work from the version table"
