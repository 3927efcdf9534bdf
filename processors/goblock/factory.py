from __future__ import annotations

from typing import Any

from otel_goblock.processors.goblock.config import Config
from otel_goblock.processors.goblock.processor import GoblockProcessor

from otel_goblock.component import Component, CreateSettings, Factory


def create(settings: CreateSettings, config: Config, next_: Any) -> Component:
    return GoblockProcessor(settings, config, next_)


FACTORY = Factory(
    type="goblock",
    kind="processor",
    description="joins spans with eBPF / Go-trace events: where each span's wall time went",
    config_class=Config,
    create=create,
    signals=frozenset({"traces"}),
)
