from __future__ import annotations

from typing import Any

from otel_goblock.processors.memory_limiter.config import Config
from otel_goblock.processors.memory_limiter.memory_limiter import MemoryLimiter

from otel_goblock.component import Component, CreateSettings, Factory


def create(settings: CreateSettings, config: Config, next_: Any) -> Component:
    return MemoryLimiter(settings, config, next_)


FACTORY = Factory(
    type="memory_limiter",
    kind="processor",
    description="refuses data (retryable) while the process is above its soft memory limit",
    config_class=Config,
    create=create,
)
