"""file exporter options (the collector's fileexporter names)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from otel_goblock.config import Duration


@dataclass
class RotationConfig:
    """Size-based rotation, lumberjack style: `<name>-<UTC time>.<ext>` backups."""

    max_megabytes: int = 100  # 0: never rotate
    max_backups: int = 3  # 0: keep every backup

    def validate(self) -> list[str]:
        problems = []
        if self.max_megabytes < 0:
            problems.append(f"max_megabytes: expected >= 0, got {self.max_megabytes}")
        if self.max_backups < 0:
            problems.append(f"max_backups: expected >= 0, got {self.max_backups}")
        return problems


@dataclass
class Config:
    path: str = ""
    format: Literal["json", "proto"] = "json"
    rotation: RotationConfig = field(default_factory=RotationConfig)
    flush_interval: Duration = field(default_factory=lambda: Duration(0.0))  # 0: every write

    def validate(self) -> list[str]:
        problems = []
        if not self.path:
            problems.append('path: expected a file path like "./spans.jsonl", got ""')
        if self.flush_interval < 0:
            problems.append(f"flush_interval: expected >= 0, got {self.flush_interval}")
        return problems
