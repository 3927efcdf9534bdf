"""Goroutine states from the demo's own /debug/pprof/goroutine?debug=2, an independent
check (the Go runtime's view, no eBPF) that a scenario's handler really blocks the way the
docs say: `[sync.Mutex.Lock]`, `[chan receive]`, `[IO wait]`, ... are the runtime's
waitReason strings."""

from __future__ import annotations

import re
import urllib.request
from collections import Counter
from dataclasses import dataclass

_HEADER = re.compile(r"^goroutine (\d+) \[([^\],]+)")


@dataclass(frozen=True)
class Goroutine:
    goid: int
    state: str  # "running", "runnable", "syscall", or a wait reason such as "chan receive"
    stack: str  # the dump's frames, function names and file:line pairs

    def has_frame(self, function: str) -> bool:
        """True when `function` (e.g. "main.(*app).mutex") is on the stack."""
        return f"\n{function}(" in self.stack


def dump(base_url: str, timeout_s: float = 10) -> list[Goroutine]:
    url = base_url.rstrip("/") + "/debug/pprof/goroutine?debug=2"
    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        text = r.read().decode(errors="replace")
    out = []
    for block in text.split("\n\n"):
        m = _HEADER.match(block)
        if m:
            out.append(Goroutine(int(m[1]), m[2], "\n" + block.split("\n", 1)[-1]))
    return out


def states(dumps: list[list[Goroutine]], function: str) -> Counter[str]:
    """How often goroutines with `function` on their stack were in each state, over dumps."""
    return Counter(g.state for d in dumps for g in d if g.has_frame(function))
