"""Factory of the `otlp` receiver (collector `otlpreceiver/factory.go`)."""

from __future__ import annotations

from otel_goblock.receivers.otlp.config import Config

from otel_goblock.component import Component, Consumers, CreateSettings, Factory


def create(settings: CreateSettings, config: Config, next_: Consumers) -> Component:
    from otel_goblock.receivers.otlp.otlp import OTLPReceiver  # servers load only when used

    return OTLPReceiver(settings, config, next_)


FACTORY = Factory(
    type="otlp",
    kind="receiver",
    description="OTLP over gRPC (:4317) and HTTP (:4318, protobuf or JSON, gzip), with TLS/mTLS",
    config_class=Config,
    create=create,
    signals=frozenset({"traces", "metrics"}),
)
