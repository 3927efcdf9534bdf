"""Two factories in one folder, as the collector ships otlp and otlphttp: FACTORY is
otlp_grpc (alias otlp), FACTORY_HTTP is otlp_http (alias otlphttp)."""

from __future__ import annotations

from typing import Any

from otel_goblock.exporters.otlp.config import Config, HTTPConfig

from otel_goblock.component import Component, CreateSettings, Factory


def create(settings: CreateSettings, config: Config, next_: Any) -> Component:
    from otel_goblock.exporters.otlp.grpc_exporter import OTLPGrpcExporter

    return OTLPGrpcExporter(settings, config)


def create_http(settings: CreateSettings, config: HTTPConfig, next_: Any) -> Component:
    from otel_goblock.exporters.otlp.http_exporter import OTLPHttpExporter

    return OTLPHttpExporter(settings, config)


FACTORY = Factory(
    type="otlp_grpc",
    kind="exporter",
    description="sends traces and metrics over OTLP/gRPC, forwarding the protobuf as received",
    config_class=Config,
    create=create,
    aliases=("otlp",),
)

FACTORY_HTTP = Factory(
    type="otlp_http",
    kind="exporter",
    description="sends traces and metrics over OTLP/HTTP (protobuf body, gzip)",
    config_class=HTTPConfig,
    create=create_http,
    aliases=("otlphttp",),
)
