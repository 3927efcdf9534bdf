"""Fewer young-generation garbage collections while a trace is parsed.

The parser allocates a small tuple per event handed on and an object per record, all
short-lived and acyclic: reference counting frees them, the cyclic collector has nothing
to find. But CPython runs a young-generation collection every 700 container allocations
(`gc.get_threshold()[0]`), and each one walks every young container still alive — the
events of the chunk being merged. On a busy trace that was a fifth of the parse time.
While at least one parse runs, the young threshold is raised to `YOUNG_THRESHOLD`; the
previous thresholds come back when the last parse ends (or is abandoned). Cycles made
meanwhile, by the parse or anything else in the process, are collected as before, only
in larger batches. A collector switched off (`gc.disable()`, or a threshold of 0), or
already set higher, is left alone.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 50_000

_lock = threading.Lock()
_users = 0
_saved: tuple[int, ...] | None = None


@contextmanager
def fewer_young_collections() -> Iterator[None]:
    global _users, _saved
    with _lock:
        if _users == 0:
            current = gc.get_threshold()
            if 0 < current[0] < YOUNG_THRESHOLD:
                _saved = current
                gc.set_threshold(YOUNG_THRESHOLD, *current[1:])
        _users += 1
    try:
        yield
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and _saved is not None:
                if gc.get_threshold()[0] == YOUNG_THRESHOLD:  # nobody changed it meanwhile
                    gc.set_threshold(*_saved)
                _saved = None
