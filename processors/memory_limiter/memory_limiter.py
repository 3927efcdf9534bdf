"""memory_limiter: refuses data while the process is above its soft memory limit.

Refusal is a retryable error, so the receiver answers UNAVAILABLE / 503 and the client
keeps the data and retries: nothing is dropped silently. Memory is sampled every
`check_interval`, never per request (a psutil call per request would cost more than the
request). Above the hard limit a full `gc.collect()` runs, like the collector's forced GC.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time

import psutil
from otel_goblock.processors.memory_limiter.config import Config

from otel_goblock.component import Component, CreateSettings, Host
from otel_goblock.consumer import RetryableError
from otel_goblock.pdata import Metrics, Traces

MIB = 1024 * 1024


class MemoryLimiter(Component):
    def __init__(self, settings: CreateSettings, config: Config, next_consumer: object) -> None:
        self._cfg = config
        self._next = next_consumer
        self._log = settings.logger
        self._proc = psutil.Process(os.getpid())
        if config.limit_mib:
            hard = config.limit_mib * MIB
            spike = (config.spike_limit_mib or config.limit_mib // 5) * MIB
        else:
            total = psutil.virtual_memory().total
            hard = total * config.limit_percentage // 100
            spike = total * (config.spike_limit_percentage or config.limit_percentage // 5) // 100
        self.hard_limit = hard
        self.soft_limit = hard - spike
        self.refusing = False
        self._last_gc = float("-inf")
        self._task: asyncio.Task[None] | None = None
        attrs = {"processor": str(settings.id)}
        self._attrs = attrs
        self._refused_spans = settings.meter.create_counter(
            "otelcol_processor_refused_spans",
            description="Spans refused by the memory limiter (the client was told to retry)",
        )
        self._refused_points = settings.meter.create_counter(
            "otelcol_processor_refused_metric_points",
            description="Metric points refused by the memory limiter",
        )
        self._refused_events = settings.meter.create_counter(
            "goblock_processor_refused_events",
            description="goblock events refused by the memory limiter",
        )

    async def start(self, host: Host) -> None:
        self.check()
        self._task = asyncio.create_task(self._loop())

    def check(self) -> None:
        rss = self._proc.memory_info().rss
        now = time.monotonic()
        # a full collection costs real CPU under load: at most one per 5 s (the collector's
        # forced GC has the same kind of floor), or a refusing pipeline collects nonstop
        if rss >= self.hard_limit and now - self._last_gc >= 5.0:
            self._last_gc = now
            gc.collect()
            rss = self._proc.memory_info().rss
        was = self.refusing
        self.refusing = rss >= self.soft_limit
        if self.refusing != was:
            self._log.warning(
                "memory usage is above the soft limit: refusing data"
                if self.refusing
                else "memory usage is back below the soft limit: accepting data",
                extra={"rss_mib": rss // MIB, "soft_limit_mib": self.soft_limit // MIB},
            )

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(float(self._cfg.check_interval))
            self.check()

    def _refuse(self) -> RetryableError:
        return RetryableError(
            "data refused due to high memory usage", retry_after_s=float(self._cfg.check_interval)
        )

    async def consume_traces(self, data: Traces) -> None:
        if self.refusing:
            self._refused_spans.add(data.span_count, self._attrs)
            self._refused_events.add(len(data.events), self._attrs)
            raise self._refuse()
        await self._next.consume_traces(data)  # type: ignore[attr-defined]

    async def consume_metrics(self, data: Metrics) -> None:
        if self.refusing:
            self._refused_points.add(data.data_point_count, self._attrs)
            raise self._refuse()
        await self._next.consume_metrics(data)  # type: ignore[attr-defined]

    async def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
