"""The eBPF tests' target program (tests/ebpf/fixtures/gbfx), built once and cached by
source hash exactly as tests/ebpf/conftest.py does, for tests outside that folder."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ebpf"))
from ebpf_harness import FIXTURE_CACHE, FIXTURE_SRC, GO


def gbfx_binary() -> Path:
    h = hashlib.sha256()
    for f in sorted(FIXTURE_SRC.glob("*")):
        h.update(f.name.encode() + f.read_bytes())
    out = FIXTURE_CACHE / f"gbfx-{h.hexdigest()[:12]}" / "gbfx"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
        subprocess.run([GO, "build", "-o", str(out), "."], cwd=FIXTURE_SRC, env=env, check=True)
    return out
