"""debug: prints what reaches it to stderr, as the collector's debug exporter.

`basic` prints one line per batch (counts only: cheap enough to leave on); `detailed`
dumps every span or data point in the collector's text layout. Sampling bounds the output
under load: per one-second window the first `sampling_initial` batches print, then every
`sampling_thereafter`-th.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from otel_goblock.exporters.debug import text
from otel_goblock.exporters.debug.config import Config

from otel_goblock.component import Component, CreateSettings
from otel_goblock.pdata import Metrics, Traces


class Sampler:
    def __init__(self, initial: int, thereafter: int, clock=time.monotonic) -> None:
        self._initial = initial
        self._thereafter = thereafter
        self._clock = clock
        self._window = -1
        self._count = 0

    def allow(self) -> bool:
        window = int(self._clock())
        if window != self._window:
            self._window, self._count = window, 0
        self._count += 1
        if self._count <= self._initial:
            return True
        return (self._count - self._initial) % self._thereafter == 0


class DebugExporter(Component):
    def __init__(
        self, settings: CreateSettings, config: Config, stream: TextIO | None = None
    ) -> None:
        self._cfg = config
        self._id = str(settings.id)
        self._stream = stream
        self._sampler = Sampler(config.sampling_initial, config.sampling_thereafter)
        self._sent_spans = settings.meter.create_counter("otelcol_exporter_sent_spans")
        self._sent_points = settings.meter.create_counter("otelcol_exporter_sent_metric_points")
        self._attrs = {"exporter": self._id}

    def _out(self, s: str) -> None:
        stream = self._stream or sys.stderr  # looked up late: tests and the CLI swap stderr
        stream.write(s)
        stream.flush()

    async def consume_traces(self, data: Traces) -> None:
        if not data.span_count:
            return
        self._sent_spans.add(data.span_count, self._attrs)
        if not self._sampler.allow():
            return
        req = data.message()
        line = (
            f"{self._id}\tTraces\t"
            f'{{"resource spans": {len(req.resource_spans)}, "spans": {data.span_count}}}\n'
        )
        if self._cfg.verbosity == "detailed":
            line += text.traces(req)
        self._out(line)

    async def consume_metrics(self, data: Metrics) -> None:
        if not data.data_point_count:
            return
        self._sent_points.add(data.data_point_count, self._attrs)
        if not self._sampler.allow():
            return
        req = data.message()
        n_metrics = sum(len(sm.metrics) for rm in req.resource_metrics for sm in rm.scope_metrics)
        line = (
            f"{self._id}\tMetrics\t"
            f'{{"resource metrics": {len(req.resource_metrics)}, "metrics": {n_metrics}, '
            f'"data points": {data.data_point_count}}}\n'
        )
        if self._cfg.verbosity == "detailed":
            line += text.metrics(req)
        self._out(line)
