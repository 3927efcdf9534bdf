"""Fixture Go binaries for the introspection tests, built once and cached.

Built with the machine's Go 1.26 and with GOTOOLCHAIN=go1.27.3 (fetched by the
go command from the module proxy), each with DWARF and stripped (-s -w). Builds
land in build/test-fixtures/ under a hash of the sources, toolchain and flags,
so a second run costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CACHE = ROOT / "build" / "test-fixtures"
TOOLCHAINS = {"1.26": "local", "1.27": "go1.27.3"}
PROGRAMS = ("basic", "otelsdk", "grpcclient")
STRIP = "-s -w"


def go_command() -> str | None:
    return shutil.which("go") or (
        "/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None
    )


@dataclass(frozen=True)
class Built:
    """One fixture binary and how it was made."""

    path: Path
    toolchain: str  # "1.26" / "1.27"
    program: str
    stripped: bool
    pie: bool = False
    goarch: str = "amd64"


def _source_hash(extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for p in sorted(FIXTURES.rglob("*")):
        if p.is_file() and p.suffix in (".go", ".mod", ".sum"):
            h.update(p.relative_to(FIXTURES).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


_failures: dict[str, str] = {}


def build(
    toolchain: str, program: str, *, stripped: bool, pie: bool = False, goarch: str = "amd64"
) -> Built:
    """Build (or reuse) one fixture; skip with the go command's reason if the
    1.27 toolchain cannot be fetched, fail for any other build error. Other
    GOARCHes are cross-compiled (pure Go): readable here, not runnable."""
    go = go_command()
    if go is None:
        pytest.skip("no go command on this machine (Go 1.26 expected at /usr/local/go)")
    tc = TOOLCHAINS[toolchain]
    if tc in _failures:
        pytest.skip(_failures[tc])
    flags = STRIP if stripped else ""
    mode = "pie" if pie else "exe"
    key = _source_hash(f"{tc}|{flags}|{mode}|{program}|{goarch}")
    arch = "" if goarch == "amd64" else f"-{goarch}"
    out = CACHE / f"golang-{program}-{toolchain}{arch}-{'s' if stripped else 'd'}-{mode}-{key}"
    if out.exists():
        return Built(out, toolchain, program, stripped, pie, goarch)
    CACHE.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=readonly -buildvcs=false")
    env["GOTOOLCHAIN"] = "local" if tc == "local" else tc
    env["GOARCH"] = goarch
    cmd = [go, "build", f"-buildmode={mode}", "-o", f"{out}.tmp"]
    if flags:
        cmd.append(f"-ldflags={flags}")
    cmd.append(f"./cmd/{program}")
    r = subprocess.run(cmd, cwd=FIXTURES, env=env, capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        msg = (r.stderr or r.stdout).strip()
        if tc != "local" and ("toolchain" in msg or "proxy" in msg or "download" in msg):
            _failures[tc] = f"GOTOOLCHAIN={tc} could not be fetched: {msg[-300:]}"
            pytest.skip(_failures[tc])
        raise RuntimeError(f"building {program} with {tc} failed:\n{msg}")
    os.replace(f"{out}.tmp", out)
    return Built(out, toolchain, program, stripped, pie, goarch)


@pytest.fixture(scope="session")
def go() -> str:
    g = go_command()
    if g is None:
        pytest.skip("no go command")
    return g


@pytest.fixture(scope="session", params=sorted(TOOLCHAINS))
def toolchain(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="session")
def otel_dwarf(toolchain: str) -> Built:
    return build(toolchain, "otelsdk", stripped=False)


@pytest.fixture(scope="session")
def otel_stripped(toolchain: str) -> Built:
    return build(toolchain, "otelsdk", stripped=True)


@pytest.fixture(scope="session")
def grpc_dwarf(toolchain: str) -> Built:
    return build(toolchain, "grpcclient", stripped=False)


@pytest.fixture(scope="session", params=PROGRAMS)
def dwarf_binary(request: pytest.FixtureRequest, toolchain: str) -> Built:
    return build(toolchain, request.param, stripped=False)


@pytest.fixture(scope="session")
def basic_dwarf(toolchain: str) -> Built:
    return build(toolchain, "basic", stripped=False)


@pytest.fixture(scope="session")
def basic_stripped(toolchain: str) -> Built:
    return build(toolchain, "basic", stripped=True)


@pytest.fixture(
    scope="session",
    params=[(p, s) for p in PROGRAMS for s in (False, True)],
    ids=lambda v: f"{v[0]}-{'stripped' if v[1] else 'dwarf'}",
)
def any_binary(request: pytest.FixtureRequest, toolchain: str) -> Built:
    program, stripped = request.param
    return build(toolchain, program, stripped=stripped)
