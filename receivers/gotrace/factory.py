"""Factory of the `gotrace` receiver."""

from __future__ import annotations

from otel_goblock.receivers.gotrace.config import Config
from otel_goblock.receivers.gotrace.receiver import GoTraceReceiver

from otel_goblock.component import Consumers, CreateSettings, Factory


def create(settings: CreateSettings, config: Config, next_: Consumers) -> GoTraceReceiver:
    return GoTraceReceiver(settings, config, next_)


FACTORY = Factory(
    type="gotrace",
    kind="receiver",
    description="Goroutine parks, GC/STW and lineage from Go execution traces, no root needed",
    config_class=Config,
    create=create,
    signals=frozenset({"traces"}),
)
