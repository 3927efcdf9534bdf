"""Building Go test fixtures once: cached by a hash of their sources and the toolchain."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "build" / "test-fixtures"


def go_build(
    module_dir: Path, package: str, name: str, *, toolchain: str = "", ldflags: str = ""
) -> Path:
    """`go build` `package` of the module at `module_dir` into build/test-fixtures, once per
    content hash (sources, go.mod/go.sum, toolchain, flags)."""
    h = hashlib.sha256(f"{toolchain}|{ldflags}|{package}".encode())
    for p in sorted(module_dir.rglob("*")):
        if p.is_file() and p.suffix in (".go", ".mod", ".sum"):
            h.update(p.relative_to(module_dir).as_posix().encode())
            h.update(p.read_bytes())
    out = CACHE / f"{name}-{h.hexdigest()[:12]}"
    if out.exists():
        return out
    CACHE.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod")
    if toolchain:
        env["GOTOOLCHAIN"] = toolchain
    cmd = ["go", "build", "-o", str(out) + ".tmp"]
    if ldflags:
        cmd.append(f"-ldflags={ldflags}")
    subprocess.run([*cmd, package], cwd=module_dir, env=env, check=True)
    os.replace(str(out) + ".tmp", out)
    return out
