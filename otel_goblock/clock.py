"""Monotonic → wall-clock conversion for kernel timestamps (DESIGN §3 "Clock").

BPF programs stamp events with `bpf_ktime_get_ns()` (CLOCK_MONOTONIC); spans carry
CLOCK_REALTIME.  The offset REALTIME - MONOTONIC changes whenever NTP slews or steps the
wall clock, so a one-shot offset drifts: it is re-sampled at least every `max_age_s`
(≤ 30 s).  Each sample brackets one REALTIME read between two MONOTONIC reads and keeps the
tightest of a few tries, so a preemption between the reads does not skew the offset.
"""

from __future__ import annotations

import threading
import time

_MONO = time.CLOCK_MONOTONIC
_REAL = time.CLOCK_REALTIME


def sample_offset(tries: int = 5) -> int:
    """REALTIME - MONOTONIC in ns, from the tightest of `tries` bracketed reads."""
    best_gap, best = None, 0
    for _ in range(tries):
        m0 = time.clock_gettime_ns(_MONO)
        r = time.clock_gettime_ns(_REAL)
        m1 = time.clock_gettime_ns(_MONO)
        gap = m1 - m0
        if best_gap is None or gap < best_gap:
            best_gap, best = gap, r - (m0 + gap // 2)
    return best


class MonotonicClock:
    """Converts CLOCK_MONOTONIC ns to wall-clock ns; thread-safe, re-samples when stale."""

    def __init__(self, max_age_s: float = 30.0) -> None:
        if max_age_s > 30.0:
            raise ValueError(f"max_age_s: expected ≤ 30 s (DESIGN §3), got {max_age_s}")
        self._max_age_ns = int(max_age_s * 1e9)
        self._lock = threading.Lock()
        self._offset = sample_offset()
        self._sampled_at = time.clock_gettime_ns(_MONO)

    @property
    def offset_ns(self) -> int:
        self.maybe_resample()
        return self._offset

    def maybe_resample(self, now_mono_ns: int | None = None) -> None:
        now = time.clock_gettime_ns(_MONO) if now_mono_ns is None else now_mono_ns
        if now - self._sampled_at >= self._max_age_ns:
            self.resample()

    def resample(self) -> None:
        off = sample_offset()
        with self._lock:
            self._offset = off
            self._sampled_at = time.clock_gettime_ns(_MONO)

    def to_wall(self, mono_ns: int) -> int:
        """Wall-clock ns for a CLOCK_MONOTONIC timestamp (offset checked for age first)."""
        return mono_ns + self.offset_ns
