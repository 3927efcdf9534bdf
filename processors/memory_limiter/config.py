from __future__ import annotations

from dataclasses import dataclass

from otel_goblock.config import Duration


@dataclass
class Config:
    """Collector memory_limiter options. Memory is this process's RSS."""

    check_interval: Duration = Duration(0.0)
    limit_mib: int = 0
    spike_limit_mib: int = 0  # default: 20% of limit_mib
    limit_percentage: int = 0  # of total system memory, instead of limit_mib
    spike_limit_percentage: int = 0

    def validate(self) -> list[str]:
        problems = []
        if self.check_interval <= 0:
            problems.append(
                f'check_interval: expected a duration > 0 like "1s", got "{self.check_interval}"'
            )
        if not self.limit_mib and not self.limit_percentage:
            problems.append(":limit_mib or limit_percentage must be set (> 0)")
        if self.limit_mib and self.limit_percentage:
            problems.append(":set one of limit_mib and limit_percentage, not both")
        if self.limit_mib and self.spike_limit_mib >= self.limit_mib:
            problems.append(
                f"spike_limit_mib: must be below limit_mib ({self.limit_mib}), "
                f"got {self.spike_limit_mib}"
            )
        if not 0 <= self.limit_percentage <= 100:
            problems.append(f"limit_percentage: expected 0..100, got {self.limit_percentage}")
        if self.limit_percentage and self.spike_limit_percentage >= self.limit_percentage:
            problems.append("spike_limit_percentage: must be below limit_percentage")
        return problems
