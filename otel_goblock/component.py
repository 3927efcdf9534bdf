"""Components, factories and the registry (collector `component` package).

Each component folder has a `factory.py` that exposes `FACTORY`; the registry imports the
known folders.  A factory names the component type, makes its default config (a dataclass
with `validate()`), and builds the component.  Receivers and exporters are one instance per
id, shared by every pipeline that names them; processors are one instance per pipeline.
"""

from __future__ import annotations

import abc
import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.metrics import Meter

Kind = Literal["receiver", "processor", "exporter", "extension"]
Signal = Literal["traces", "metrics"]


@dataclass(frozen=True, slots=True)
class ComponentID:
    type: str
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> ComponentID:
        """`type[/name]`; raises ValueError naming what is wrong."""
        if not isinstance(text, str) or not text:
            raise ValueError(f'expected a component id like "otlp" or "otlp/2", got {text!r}')
        typ, _, name = text.partition("/")
        if not typ or ("/" in text and not name) or "/" in name or " " in text:
            raise ValueError(f'expected a component id like "otlp" or "otlp/2", got {text!r}')
        return cls(typ, name)

    def __str__(self) -> str:
        return f"{self.type}/{self.name}" if self.name else self.type


@dataclass(slots=True)
class CreateSettings:
    """What a factory hands to the component it builds."""

    id: ComponentID
    kind: Kind
    logger: logging.Logger
    meter: Meter
    pipeline: str = ""  # processors only: the pipeline id they serve
    signals: frozenset[str] = frozenset()  # which signals this instance serves


class Host(abc.ABC):
    """What a running component may ask of the service."""

    @abc.abstractmethod
    def get_extension(self, id_: str) -> Component | None: ...

    @abc.abstractmethod
    def report_fatal_error(self, err: BaseException) -> None:
        """Stop the service: a component cannot go on (e.g. a required receiver failed)."""


class Component(abc.ABC):  # noqa: B024 - both hooks are optional
    """Start/shutdown lifecycle. Data goes in through consume_traces/consume_metrics."""

    async def start(self, host: Host) -> None:  # noqa: B027 - optional hook
        """Open servers, attach probes. Raise to fail the start with a clear message."""

    async def shutdown(self) -> None:  # noqa: B027 - optional hook
        """Stop accepting, flush what was accepted, release everything. Idempotent."""


class PipelineWatcher(abc.ABC):
    """An extension told when every pipeline has started and before any stops — the
    collector's `extension.PipelineWatcher`, so a health probe never says "available"
    while a receiver is still opening its port."""

    @abc.abstractmethod
    def ready(self) -> None: ...

    @abc.abstractmethod
    def not_ready(self) -> None: ...


# create(settings, config, next_consumer) -> Component.
# Receivers get a `Consumers` (traces and/or metrics fan-outs); processors get the next
# consumer of their pipeline's signal; exporters and extensions get None.
CreateFunc = Callable[[CreateSettings, Any, Any], Component]


@dataclass(slots=True)
class Consumers:
    """A receiver's downstream, one per signal it feeds (None when no pipeline wants it)."""

    traces: Any = None
    metrics: Any = None


@dataclass(frozen=True)
class Factory:
    type: str
    kind: Kind
    description: str  # one line, shown by `otel-goblock components`
    config_class: type
    create: CreateFunc
    signals: frozenset[str] = field(default_factory=lambda: frozenset({"traces", "metrics"}))
    aliases: tuple[str, ...] = ()

    def create_default_config(self) -> Any:
        return self.config_class()


# modules holding FACTORY (and FACTORY_<variant>); a component not listed here does not exist
_FACTORY_MODULES = [
    "otel_goblock.receivers.otlp.factory",
    "otel_goblock.receivers.ebpf.factory",
    "otel_goblock.receivers.gotrace.factory",
    "otel_goblock.processors.batch.factory",
    "otel_goblock.processors.memory_limiter.factory",
    "otel_goblock.processors.goblock.factory",
    "otel_goblock.exporters.otlp.factory",
    "otel_goblock.exporters.file.factory",
    "otel_goblock.exporters.debug.factory",
    "otel_goblock.extensions.health_check.factory",
    "otel_goblock.extensions.bearertokenauth.factory",
]


class Registry:
    def __init__(self, factories: list[Factory]) -> None:
        self._by_kind: dict[str, dict[str, Factory]] = {}
        for f in factories:
            table = self._by_kind.setdefault(f.kind, {})
            for name in (f.type, *f.aliases):
                table[name] = f

    def get(self, kind: str, type_: str) -> Factory | None:
        return self._by_kind.get(kind, {}).get(type_)

    def types(self, kind: str) -> list[str]:
        return sorted(self._by_kind.get(kind, {}))

    def factories(self) -> list[Factory]:
        seen: dict[tuple[str, str], Factory] = {}
        for table in self._by_kind.values():
            for f in table.values():
                seen[(f.kind, f.type)] = f
        return sorted(seen.values(), key=lambda f: (f.kind, f.type))


def default_registry() -> Registry:
    factories: list[Factory] = []
    for mod in _FACTORY_MODULES:
        try:
            module = importlib.import_module(mod)
            # a folder may hold several variants (otlp_grpc and otlp_http): FACTORY, FACTORY_*
            factories.extend(
                v for k, v in vars(module).items() if k == "FACTORY" or k.startswith("FACTORY_")
            )
        except ModuleNotFoundError as e:
            # a component still being built: absent, not broken
            if e.name and mod.startswith(e.name):
                continue
            raise
    return Registry(factories)
