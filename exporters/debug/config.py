"""debug exporter options (the collector's debugexporter names and defaults)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class Config:
    verbosity: Literal["basic", "detailed"] = "basic"
    # per second: the first `sampling_initial` batches are printed, then every
    # `sampling_thereafter`-th (the collector's zap sampling; 1 prints everything)
    sampling_initial: int = 2
    sampling_thereafter: int = 1

    def validate(self) -> list[str]:
        problems = []
        if self.sampling_initial < 0:
            problems.append(f"sampling_initial: expected >= 0, got {self.sampling_initial}")
        if self.sampling_thereafter < 1:
            problems.append(f"sampling_thereafter: expected >= 1, got {self.sampling_thereafter}")
        return problems
