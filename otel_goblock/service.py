"""The running service: builds the component graph from a checked config, starts it,
and stops it so that everything accepted is exported (collector `service` package).

Graph: receivers (one per id) → per-pipeline processor chain → fan-out → exporters (one
per id). Start order is exporters, processors, receivers (a receiver never hands data to
something not yet running); shutdown is the reverse, so every stage drains into a stage
that still runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from otel_goblock.component import (
    Component,
    ComponentID,
    Consumers,
    CreateSettings,
    Host,
    PipelineWatcher,
)
from otel_goblock.consumer import FanoutMetrics, FanoutTraces
from otel_goblock.service_config import ComponentSpec, ServiceConfig
from otel_goblock.telemetry import Telemetry

log = logging.getLogger("otel_goblock.service")


class Service(Host):
    def __init__(self, config: ServiceConfig, telemetry: Telemetry | None = None) -> None:
        self.config = config
        self.telemetry = telemetry or Telemetry()
        self.extensions: dict[str, Component] = {}
        self.exporters: dict[str, Component] = {}
        self.processors: list[tuple[str, str, Component]] = []  # (pipeline, id, component)
        self.receivers: dict[str, Component] = {}
        self.fatal: asyncio.Future[BaseException] | None = None
        self._built = False

    # ---- Host
    def get_extension(self, id_: str) -> Component | None:
        return self.extensions.get(id_)

    def report_fatal_error(self, err: BaseException) -> None:
        log.error("fatal error reported by a component: %s", err)
        if self.fatal is not None and not self.fatal.done():
            self.fatal.set_result(err)

    # ---- graph
    def _settings(
        self, spec: ComponentSpec, pipeline: str = "", signals: frozenset[str] = frozenset()
    ) -> CreateSettings:
        return CreateSettings(
            id=spec.id,
            kind=spec.kind,  # type: ignore[arg-type]
            logger=logging.getLogger(f"otel_goblock.{spec.kind}.{spec.id}"),
            meter=self.telemetry.meter(f"otel_goblock/{spec.kind}/{spec.id}"),
            pipeline=pipeline,
            signals=signals,
        )

    def _signals_of(self, kind_key: str, ref: str) -> frozenset[str]:
        return frozenset(
            pid.partition("/")[0]
            for pid, p in self.config.service.pipelines.items()
            if ref in getattr(p, kind_key)
        )

    def build(self) -> None:
        cfg = self.config
        for ref in cfg.service.extensions:
            spec = cfg.extensions[ref]
            self.extensions[ref] = spec.factory.create(self._settings(spec), spec.config, None)
        used_exporters = {e for p in cfg.service.pipelines.values() for e in p.exporters}
        for ref in sorted(used_exporters):
            spec = cfg.exporters[ref]
            self.exporters[ref] = spec.factory.create(
                self._settings(spec, signals=self._signals_of("exporters", ref)), spec.config, None
            )
        heads: dict[str, dict[str, list[Any]]] = {}  # receiver -> signal -> pipeline heads
        for pid, pipe in cfg.service.pipelines.items():
            signal = pid.partition("/")[0]
            exporters = [self.exporters[e] for e in pipe.exporters]
            nxt: Any = FanoutTraces(exporters) if signal == "traces" else FanoutMetrics(exporters)
            for ref in reversed(pipe.processors):
                spec = cfg.processors[ref]
                comp = spec.factory.create(
                    self._settings(spec, pipeline=pid, signals=frozenset({signal})),
                    spec.config,
                    nxt,
                )
                self.processors.append((pid, ref, comp))
                nxt = comp
            for ref in pipe.receivers:
                heads.setdefault(ref, {}).setdefault(signal, []).append(nxt)
        for ref, by_signal in heads.items():
            spec = cfg.receivers[ref]
            consumers = Consumers(
                traces=FanoutTraces(by_signal["traces"]) if "traces" in by_signal else None,
                metrics=FanoutMetrics(by_signal["metrics"]) if "metrics" in by_signal else None,
            )
            self.receivers[ref] = spec.factory.create(
                self._settings(spec, signals=frozenset(by_signal)), spec.config, consumers
            )
        self._built = True

    # ---- lifecycle
    async def start(self) -> None:
        self.fatal = asyncio.get_running_loop().create_future()
        if not self._built:
            self.build()
        addr = self.config.service.telemetry.metrics
        if addr.level != "none" and addr.address:
            await self.telemetry.serve(addr.address.host, addr.address.port)
        started: list[tuple[str, Component]] = []
        try:
            for group in (self.extensions, self.exporters):
                for ref, comp in group.items():
                    await comp.start(self)
                    started.append((ref, comp))
            # self.processors lists each pipeline's chain last-first (built from the
            # exporters back): start downstream first
            for _, ref, comp in self.processors:
                await comp.start(self)
                started.append((ref, comp))
            for ref, comp in self.receivers.items():
                await comp.start(self)
                started.append((ref, comp))
        except BaseException:
            for _ref, comp in reversed(started):
                try:
                    await comp.shutdown()
                except Exception:
                    log.exception("shutdown after a failed start")
            await self.telemetry.shutdown()
            raise
        for ext in self.extensions.values():
            if isinstance(ext, PipelineWatcher):
                ext.ready()
        log.info(
            "everything is ready; begin running and processing data",
            extra={"pipelines": self.config.summary()},
        )

    async def shutdown(self, timeout_s: float | None = None) -> None:
        """Receivers first, then processors (flush), exporters (drain), extensions."""
        timeout_s = float(self.config.service.shutdown_timeout if timeout_s is None else timeout_s)
        deadline = time.monotonic() + timeout_s
        for ext in self.extensions.values():
            if isinstance(ext, PipelineWatcher):
                ext.not_ready()
        stages: list[list[tuple[str, Component]]] = [
            list(self.receivers.items()),
            # upstream first: a processor flushes into the next one, which must still run
            [(f"{pid}:{ref}", c) for pid, ref, c in reversed(self.processors)],
            list(self.exporters.items()),
            list(self.extensions.items()),
        ]
        for stage in stages:
            for ref, comp in stage:
                left = max(0.1, deadline - time.monotonic())
                try:
                    await asyncio.wait_for(comp.shutdown(), left)
                except TimeoutError:
                    log.error(
                        "component did not stop within the shutdown timeout",
                        extra={"component": ref, "timeout_s": timeout_s},
                    )
                except Exception:
                    log.exception("component failed to stop", extra={"component": ref})
        await self.telemetry.shutdown()
        log.info("shutdown complete")


def component_id(text: str) -> ComponentID:
    return ComponentID.parse(text)
