"""Building and running the Go fixture programs of the gotrace tests.

Binaries are cached under build/gotrace-fixtures by a hash of the sources, go.mod/go.sum
and the toolchain, so the suite pays for `go build` once. Toolchains: the machine's Go
("" = whatever `go` is, 1.26 here) and go1.27.3 (fetched by `go` itself from the module
proxy on first use, as GOTOOLCHAIN allows).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
CACHE = ROOT / "build" / "gotrace-fixtures"
TOOLCHAINS = ("local", "go1.27.3")


def go_binary() -> str:
    return shutil.which("go") or "/usr/local/go/bin/go"


def _env(toolchain: str) -> dict[str, str]:
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod")
    if toolchain != "local":
        env["GOTOOLCHAIN"] = toolchain
    return env


def goroot(toolchain: str) -> Path:
    out = subprocess.run(
        [go_binary(), "env", "GOROOT"],
        env=_env(toolchain),
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Path(out.stdout.strip())


def build(package: str, toolchain: str) -> Path:
    """`go build ./<package>` of the fixtures module, cached by content hash."""
    h = hashlib.sha256(f"{toolchain}|{package}".encode())
    for p in sorted(FIXTURES.rglob("*")):
        if p.is_file() and p.suffix in (".go", ".mod", ".sum"):
            h.update(p.relative_to(FIXTURES).as_posix().encode())
            h.update(p.read_bytes())
    out = CACHE / f"{package}-{toolchain}-{h.hexdigest()[:12]}"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    subprocess.run(
        [go_binary(), "build", "-o", str(tmp), f"./{package}"],
        cwd=FIXTURES,
        env=_env(toolchain),
        check=True,
        timeout=900,
    )
    os.replace(tmp, out)
    return out


def write_trace(toolchain: str, dest: Path, *args: str) -> Path:
    """Run the scenarios program (built with `toolchain`), writing its trace to `dest`."""
    subprocess.run([str(build("scenarios", toolchain)), str(dest), *args], check=True, timeout=300)
    return dest


def go_parse(trace: Path, *, parks: bool = False, toolchain: str = "local") -> dict[str, Any]:
    """Go's own parser (golang.org/x/exp/trace) on `trace`: counts, reasons, parks."""
    cmd = [str(build("goparse", toolchain)), *(["-parks"] if parks else []), str(trace)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout)


def go_tool_trace_wire(trace: Path, toolchain: str = "local") -> str:
    """`go tool trace -d=wire`: the wire format as text (Go's raw reader)."""
    out = subprocess.run(
        [go_binary(), "tool", "trace", "-d=wire", str(trace)],
        env=_env(toolchain),
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return out.stdout
