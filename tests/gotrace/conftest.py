"""Fixtures of the gotrace tests: real traces written by the scenario program."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from gotrace_fixtures import TOOLCHAINS, write_trace


@dataclass
class ScenarioTrace:
    toolchain: str
    path: Path
    wall_before_ns: int  # wall clock just before the program started
    wall_after_ns: int  # … and just after it exited


@pytest.fixture(scope="session", params=TOOLCHAINS)
def scenario_trace(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ScenarioTrace:
    toolchain = request.param
    dest = tmp_path_factory.mktemp(f"trace-{toolchain}") / "scenarios.trace"
    before = time.time_ns()
    try:
        write_trace(toolchain, dest)
    except subprocess.CalledProcessError as e:  # e.g. go1.27.3 not downloadable here
        pytest.fail(f"building/running the scenarios with {toolchain} failed: {e}")
    return ScenarioTrace(toolchain, dest, before, time.time_ns())


@pytest.fixture(scope="session")
def multigen_trace(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A Go 1.26 trace spanning 3 generations (the scenarios plus 2.3 s of 10 ms ticks)."""
    dest = tmp_path_factory.mktemp("trace-multigen") / "multigen.trace"
    write_trace("local", dest, "0", "2300")
    return dest.read_bytes()
