from __future__ import annotations

from typing import Any

from otel_goblock.exporters.file.config import Config

from otel_goblock.component import Component, CreateSettings, Factory


def create(settings: CreateSettings, config: Config, next_: Any) -> Component:
    from otel_goblock.exporters.file.file_exporter import FileExporter

    return FileExporter(settings, config)


FACTORY = Factory(
    type="file",
    kind="exporter",
    description="writes one OTLP/JSON (or length-prefixed protobuf) export request per line",
    config_class=Config,
    create=create,
)
