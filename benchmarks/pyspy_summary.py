#!/usr/bin/env python3
"""Summarize a py-spy `--format raw` profile: where the pipeline's time goes.

Why: a flame graph needs a browser; the benchmark report needs numbers in text. Prints the
functions with the most self time and the most inclusive time (share of all samples), and
the share per source file, so "the receiver spends 40% in X" can be read off directly.

Usage: benchmarks/pyspy_summary.py PROFILE.txt [--top 20]
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

# py-spy raw frames look like "function (path/to/file.py:123)"; idle frames are filtered by
# py-spy itself unless --idle is given.
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::(?P<line>\d+))?\)$")


def short(frame: str) -> str:
    """'func (…/site-packages/grpc/aio/_server.py:12)' → 'func (grpc/aio/_server.py)'."""
    m = FRAME.match(frame)
    if not m:
        return frame
    path = m["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m['func']} ({path})"


def summarize(path: Path, top: int = 20) -> dict[str, list[tuple[str, float]]]:
    """Self, inclusive and per-file shares (fractions of all samples)."""
    self_t: Counter[str] = Counter()
    incl_t: Counter[str] = Counter()
    file_t: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [short(f) for f in stack.split(";")]
        # thread/process header frames from py-spy ("process 1:...", "thread (0x..)") skipped
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        self_t[frames[-1]] += n
        leaf_file = frames[-1].rsplit("(", 1)[-1].rstrip(")")
        file_t[leaf_file] += n
        for f in set(frames):
            incl_t[f] += n
    if not total:
        return {"self": [], "inclusive": [], "file": []}
    return {
        "self": [(f, n / total) for f, n in self_t.most_common(top)],
        "inclusive": [(f, n / total) for f, n in incl_t.most_common(top)],
        "file": [(f, n / total) for f, n in file_t.most_common(top)],
        "samples": [("total", float(total))],
    }


def render(summary: dict[str, list[tuple[str, float]]]) -> str:
    out = []
    for key, title in (
        ("self", "self time (the frame on top of the stack)"),
        ("inclusive", "inclusive time (the frame anywhere on the stack)"),
        ("file", "self time by source file"),
    ):
        out.append(f"-- {title}")
        out.extend(f"{share * 100:6.1f}%  {name}" for name, share in summary.get(key, []))
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", type=Path)
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    print(render(summarize(args.profile, args.top)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
