"""The exporterhelper settings every exporter shares: same names and defaults as the
collector's `sending_queue`, `retry_on_failure` and `timeout`, so a collector config
moves over unchanged."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from otel_goblock.config import Duration


@dataclass
class QueueConfig:
    """`sending_queue`: a bounded in-memory queue drained by `num_consumers` senders.

    `queue_size` counts requests (batches), as the collector's default `sizer: requests`;
    the telemetry still counts spans / metric points. With `storage` the queue lives in
    that directory (see `queues.PersistentQueue`).
    """

    enabled: bool = True
    num_consumers: int = 10
    queue_size: int = 1000
    # a directory: the queue is kept on disk there and survives a crash or restart
    # (the collector names a storage extension here; a plain directory is enough for us)
    storage: str = ""

    def validate(self) -> list[str]:
        if not self.enabled:
            return []
        problems = []
        if self.num_consumers < 1:
            problems.append(f"num_consumers: expected >= 1, got {self.num_consumers}")
        if self.queue_size < 1:
            problems.append(f"queue_size: expected >= 1, got {self.queue_size}")
        if self.storage and os.path.exists(self.storage) and not os.path.isdir(self.storage):
            problems.append(f"storage: expected a directory, got the file {self.storage!r}")
        return problems


@dataclass
class RetryConfig:
    """`retry_on_failure`: exponential backoff with jitter (cenkalti/backoff semantics)."""

    enabled: bool = True
    initial_interval: Duration = field(default_factory=lambda: Duration(5.0))
    randomization_factor: float = 0.5
    multiplier: float = 1.5
    max_interval: Duration = field(default_factory=lambda: Duration(30.0))
    max_elapsed_time: Duration = field(default_factory=lambda: Duration(300.0))  # 0: forever

    def validate(self) -> list[str]:
        if not self.enabled:
            return []
        problems = []
        if self.initial_interval <= 0:
            problems.append(f"initial_interval: expected > 0, got {self.initial_interval}")
        if not 0 <= self.randomization_factor <= 1:
            problems.append(f"randomization_factor: expected 0..1, got {self.randomization_factor}")
        if self.multiplier < 1:
            problems.append(f"multiplier: expected >= 1, got {self.multiplier}")
        if self.max_interval < self.initial_interval:
            problems.append(
                f"max_interval: expected >= initial_interval ({self.initial_interval}), "
                f"got {self.max_interval}"
            )
        if self.max_elapsed_time < 0:
            problems.append(f"max_elapsed_time: expected >= 0, got {self.max_elapsed_time}")
        return problems


@dataclass
class TimeoutConfig:
    """`timeout`: the limit of one export attempt (not of the retries)."""

    timeout: Duration = field(default_factory=lambda: Duration(5.0))

    def validate(self) -> list[str]:
        if self.timeout <= 0:
            return [f"timeout: expected a duration > 0, got {self.timeout}"]
        return []
