from __future__ import annotations

from dataclasses import dataclass, field

from otel_goblock.config import Duration


@dataclass
class Config:
    """Collector batch processor options, same names and defaults."""

    send_batch_size: int = 8192
    send_batch_max_size: int = 0  # 0: no upper bound
    timeout: Duration = field(default_factory=lambda: Duration(0.2))

    def validate(self) -> list[str]:
        problems = []
        if self.send_batch_size < 0:
            problems.append(f"send_batch_size: expected >= 0, got {self.send_batch_size}")
        if self.send_batch_max_size < 0:
            problems.append(f"send_batch_max_size: expected >= 0, got {self.send_batch_max_size}")
        elif 0 < self.send_batch_max_size < self.send_batch_size:
            problems.append(
                "send_batch_max_size: must be 0 or >= send_batch_size "
                f"({self.send_batch_size}), got {self.send_batch_max_size}"
            )
        return problems
