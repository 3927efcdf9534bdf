"""Exponential backoff with jitter, as cenkalti/backoff's ExponentialBackOff that the
collector's retry sender uses: the interval grows by `multiplier` up to `max_interval`,
each wait is drawn from interval·(1 ± randomization_factor), and once the elapsed time
plus the next wait would pass `max_elapsed_time` the backoff stops."""

from __future__ import annotations

import random
import time

from otel_goblock.exporterhelper.config import RetryConfig

_RNG = random.Random()  # seeding one per request cost more than the send itself


class ExponentialBackoff:
    def __init__(
        self,
        cfg: RetryConfig,
        clock=time.monotonic,
        rng: random.Random | None = None,
        start: float | None = None,  # when the first attempt began (default: now)
    ):
        self._cfg = cfg
        self._clock = clock
        self._rng = rng or _RNG
        self._interval = float(cfg.initial_interval)
        self._start = clock() if start is None else start

    def elapsed(self) -> float:
        return self._clock() - self._start

    def next(self) -> float | None:
        """The next wait in seconds, or None when the retries are over."""
        rf = self._cfg.randomization_factor
        delta = rf * self._interval
        wait = self._rng.uniform(self._interval - delta, self._interval + delta)
        self._interval = min(self._interval * self._cfg.multiplier, float(self._cfg.max_interval))
        max_elapsed = float(self._cfg.max_elapsed_time)
        if max_elapsed and self.elapsed() + wait > max_elapsed:
            return None
        return wait
