"""The `service:` section and the whole-config check (what `otel-goblock validate` runs).

Every problem is collected, not just the first, so a user fixes a config in one pass.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, Literal

from otel_goblock.component import ComponentID, Factory, Registry
from otel_goblock.config import ConfigError, Duration, Endpoint, decode
from otel_goblock.config.loader import RawConfig
from otel_goblock.pacing import PacingConfig

SIGNALS = ("traces", "metrics")


@dataclass
class PipelineConfig:
    receivers: list[str] = field(default_factory=list)
    processors: list[str] = field(default_factory=list)
    exporters: list[str] = field(default_factory=list)

    def validate(self) -> list[str]:
        problems = []
        if not self.receivers:
            problems.append("receivers: a pipeline needs at least one receiver")
        if not self.exporters:
            problems.append("exporters: a pipeline needs at least one exporter")
        for key in ("receivers", "processors", "exporters"):
            ids = getattr(self, key)
            for dup in sorted({i for i in ids if ids.count(i) > 1}):
                problems.append(f"{key}: {dup!r} is listed twice")
        return problems


@dataclass
class LogsTelemetry:
    level: Literal["debug", "info", "warn", "warning", "error"] = "info"


@dataclass
class MetricsTelemetry:
    address: Endpoint | None = field(default_factory=lambda: Endpoint("localhost:8888"))
    level: Literal["none", "basic", "normal", "detailed"] = "basic"


@dataclass
class TelemetryConfig:
    logs: LogsTelemetry = field(default_factory=LogsTelemetry)
    metrics: MetricsTelemetry = field(default_factory=MetricsTelemetry)


@dataclass
class ServiceSection:
    extensions: list[str] = field(default_factory=list)
    pipelines: dict[str, PipelineConfig] = field(default_factory=dict)
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    shutdown_timeout: Duration = field(default_factory=lambda: Duration(30.0))
    cpu_pacing: PacingConfig = field(default_factory=PacingConfig)

    def validate(self) -> list[str]:
        problems = []
        if not self.pipelines:
            problems.append("pipelines: at least one pipeline (traces or metrics) is needed")
        for pid in self.pipelines:
            try:
                cid = ComponentID.parse(pid)
            except ValueError as e:
                problems.append(f"pipelines.{pid}: {e}")
                continue
            if cid.type not in SIGNALS:
                problems.append(
                    f"pipelines.{pid}: unsupported signal {cid.type!r} (expected traces or metrics)"
                )
        return problems


@dataclass
class ComponentSpec:
    id: ComponentID
    kind: str
    factory: Factory
    config: Any


@dataclass
class ServiceConfig:
    """A checked config: every component decoded, every pipeline resolvable."""

    receivers: dict[str, ComponentSpec]
    processors: dict[str, ComponentSpec]
    exporters: dict[str, ComponentSpec]
    extensions: dict[str, ComponentSpec]
    service: ServiceSection

    def summary(self) -> str:
        parts = []
        for pid, p in self.service.pipelines.items():
            chain = ",".join(p.receivers) + " -> "
            chain += "".join(f"{x} -> " for x in p.processors) + ",".join(p.exporters)
            parts.append(f"{pid}: {chain}")
        return "; ".join(parts)


def _kind_section(kind: str) -> str:
    return kind + "s"


def _authenticator_refs(obj: Any, path: str) -> list[tuple[str, str]]:
    """(key path, extension id) of every `auth.authenticator` set in a decoded component
    config (receivers: `protocols.<p>.auth`, exporters: `auth`)."""
    found: list[tuple[str, str]] = []
    if not is_dataclass(obj) or isinstance(obj, type):
        return found
    for f in fields(obj):
        value = getattr(obj, f.name, None)
        if f.name == "auth" and isinstance(getattr(value, "authenticator", None), str):
            with contextlib.suppress(ValueError):  # a malformed id: its own validate() says so
                ComponentID.parse(value.authenticator)
                found.append((f"{path}.auth.authenticator", value.authenticator))
        else:
            found.extend(_authenticator_refs(value, f"{path}.{f.name}"))
    return found


def build_config(raw: RawConfig, registry: Registry) -> ServiceConfig:
    """Decode and cross-check everything; raise ConfigError listing every problem."""
    problems: list[str] = []
    specs: dict[str, dict[str, ComponentSpec]] = {}
    broken: set[tuple[str, str]] = set()  # configured but undecodable: already reported
    for kind in ("receiver", "processor", "exporter", "extension"):
        section = _kind_section(kind)
        table: dict[str, ComponentSpec] = {}
        for key, value in getattr(raw, section).items():
            path = f"{section}.{key}"
            try:
                cid = ComponentID.parse(str(key))
            except ValueError as e:
                problems.append(f"{path}: {e}")
                broken.add((section, str(key)))
                continue
            factory = registry.get(kind, cid.type)
            if factory is None:
                broken.add((section, str(key)))
                known = ", ".join(registry.types(kind)) or "none"
                problems.append(f"{path}: unknown {kind} type {cid.type!r} (known: {known})")
                continue
            cfg = decode(factory.config_class, value, path, problems)
            table[str(cid)] = ComponentSpec(cid, kind, factory, cfg)
        specs[section] = table

    service = decode(ServiceSection, raw.service, "service", problems)
    for pid, pipe in (service.pipelines or {}).items():
        signal = pid.partition("/")[0]
        for key, kind in (
            ("receivers", "receiver"),
            ("processors", "processor"),
            ("exporters", "exporter"),
        ):
            for ref in getattr(pipe, key):
                spec = specs[key].get(ref)
                path = f"service.pipelines.{pid}.{key}"
                if spec is None and (key, ref) in broken:
                    continue
                if spec is None:
                    problems.append(
                        f"{path}: {kind} {ref!r} is not configured (add it under `{key}:`)"
                    )
                elif signal in SIGNALS and signal not in spec.factory.signals:
                    problems.append(f"{path}: {kind} {ref!r} does not support {signal}")
    for ref in service.extensions:
        if ref not in specs["extensions"]:
            problems.append(
                f"service.extensions: extension {ref!r} is not configured"
                " (add it under `extensions:`)"
            )
    # collector configauth: an authenticator must be a configured, enabled extension
    enabled = set(service.extensions)
    for section in ("receivers", "exporters"):
        for cid, spec in specs[section].items():
            for path, ref in _authenticator_refs(spec.config, f"{section}.{cid}"):
                if ref not in specs["extensions"] and ("extensions", ref) not in broken:
                    problems.append(
                        f"{path}: extension {ref!r} is not configured (add it under "
                        "`extensions:` and list it in `service.extensions`)"
                    )
                elif ref in specs["extensions"] and ref not in enabled:
                    problems.append(
                        f"{path}: extension {ref!r} is configured but not enabled "
                        "(list it in `service.extensions`)"
                    )
    if problems:
        raise ConfigError(problems)
    return ServiceConfig(
        specs["receivers"], specs["processors"], specs["exporters"], specs["extensions"], service
    )
