from __future__ import annotations

from otel_goblock.receivers.ebpf.config import Config
from otel_goblock.receivers.ebpf.receiver import EbpfReceiver

from otel_goblock.component import Consumers, CreateSettings, Factory


def create(settings: CreateSettings, config: Config, next_: Consumers) -> EbpfReceiver:
    return EbpfReceiver(settings, config, next_)


FACTORY = Factory(
    type="ebpf",
    kind="receiver",
    description="Kernel-side waits of target processes: blocking syscalls, off-CPU, run queue, TCP",
    config_class=Config,
    create=create,
    signals=frozenset({"traces", "metrics"}),
)
