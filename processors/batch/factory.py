from __future__ import annotations

from typing import Any

from otel_goblock.processors.batch.batch import BatchProcessor
from otel_goblock.processors.batch.config import Config

from otel_goblock.component import Component, CreateSettings, Factory


def create(settings: CreateSettings, config: Config, next_: Any) -> Component:
    return BatchProcessor(settings, config, next_)


FACTORY = Factory(
    type="batch",
    kind="processor",
    description="joins requests into larger batches (by size or timeout) without re-encoding",
    config_class=Config,
    create=create,
)
