from __future__ import annotations

from typing import Any

from otel_goblock.exporters.debug.config import Config

from otel_goblock.component import Component, CreateSettings, Factory


def create(settings: CreateSettings, config: Config, next_: Any) -> Component:
    from otel_goblock.exporters.debug.debug_exporter import DebugExporter

    return DebugExporter(settings, config)


FACTORY = Factory(
    type="debug",
    kind="exporter",
    description="prints a line per batch (basic) or every span / data point (detailed) to stderr",
    config_class=Config,
    create=create,
)
