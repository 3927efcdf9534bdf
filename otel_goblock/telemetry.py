"""The pipeline's own metrics: OTel SDK instruments, exposed as Prometheus text.

Components get a `Meter` and name their instruments as the collector does
(`otelcol_receiver_accepted_spans`, …, DESIGN §7). The Prometheus rendering is ours
rather than prometheus_client's global registry, so that several pipelines in one process
(tests) never share counters; counters get the `_total` suffix the collector's Prometheus
endpoint shows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

import psutil
from aiohttp import web
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    InMemoryMetricReader,
    Sum,
)


class Telemetry:
    def __init__(self, service_instance: str = "") -> None:
        self._reader = InMemoryMetricReader()
        self._provider = MeterProvider(metric_readers=[self._reader])
        self._started = time.time()
        self._proc = psutil.Process(os.getpid())
        self._runner: web.AppRunner | None = None
        meter = self.meter("otelcol/process")
        meter.create_observable_gauge(
            "otelcol_process_memory_rss",
            [self._rss],
            unit="By",
            description="Total physical memory (resident set size)",
        )
        meter.create_observable_counter(
            "otelcol_process_cpu_seconds",
            [self._cpu],
            unit="s",
            description="Total CPU user and system time in seconds",
        )
        meter.create_observable_counter(
            "otelcol_process_uptime", [self._uptime], unit="s", description="Uptime of the process"
        )

    def meter(self, name: str) -> Meter:
        return self._provider.get_meter(name)

    def _rss(self, _: CallbackOptions) -> Iterable[Observation]:
        yield Observation(self._proc.memory_info().rss)

    def _cpu(self, _: CallbackOptions) -> Iterable[Observation]:
        t = self._proc.cpu_times()
        yield Observation(t.user + t.system)

    def _uptime(self, _: CallbackOptions) -> Iterable[Observation]:
        yield Observation(time.time() - self._started)

    def snapshot(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        """{metric name: {sorted attribute items: value}} for sums and gauges."""
        out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
        data = self._reader.get_metrics_data()
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if isinstance(m.data, Sum | Gauge):
                        series = out.setdefault(m.name, {})
                        for p in m.data.data_points:
                            attrs = (p.attributes or {}).items()
                            key = tuple(sorted((k, str(v)) for k, v in attrs))
                            series[key] = series.get(key, 0) + p.value
        return out

    def total(self, name: str, **attrs: str) -> float:
        """Sum of a metric over the series that match `attrs` (0 when absent)."""
        want = set(attrs.items())
        return sum(v for k, v in self.snapshot().get(name, {}).items() if want <= set(k))

    def prometheus_text(self) -> str:
        lines: list[str] = []
        data = self._reader.get_metrics_data()
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    _render(m, lines)
        return "\n".join(lines) + "\n"

    async def serve(self, host: str, port: int) -> None:
        app = web.Application()

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(
                text=self.prometheus_text(),
                content_type="text/plain",
                charset="utf-8",
                headers={"X-Format": "prometheus-0.0.4"},
            )

        app.router.add_get("/metrics", metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()

    async def shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._provider.shutdown()


def _labels(attrs: dict[str, object] | None, extra: str = "") -> str:
    parts = [f'{_name(k)}="{_escape(str(v))}"' for k, v in sorted((attrs or {}).items())]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _name(text: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in text)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _render(m: object, lines: list[str]) -> None:
    name = _name(m.name)  # type: ignore[attr-defined]
    data = m.data  # type: ignore[attr-defined]
    if isinstance(data, Sum):
        if data.is_monotonic:
            name = name if name.endswith("_total") else name + "_total"
            kind = "counter"
        else:
            kind = "gauge"
        lines.append(f"# HELP {name} {m.description}")  # type: ignore[attr-defined]
        lines.append(f"# TYPE {name} {kind}")
        for p in data.data_points:
            lines.append(f"{name}{_labels(p.attributes)} {p.value}")
    elif isinstance(data, Gauge):
        lines.append(f"# HELP {name} {m.description}")  # type: ignore[attr-defined]
        lines.append(f"# TYPE {name} gauge")
        for p in data.data_points:
            lines.append(f"{name}{_labels(p.attributes)} {p.value}")
    elif isinstance(data, Histogram):
        lines.append(f"# HELP {name} {m.description}")  # type: ignore[attr-defined]
        lines.append(f"# TYPE {name} histogram")
        for p in data.data_points:
            cum = 0
            for bound, count in zip(p.explicit_bounds, p.bucket_counts, strict=False):
                cum += count
                le = 'le="' + f"{bound:g}" + '"'
                lines.append(f"{name}_bucket{_labels(p.attributes, le)} {cum}")
            inf = 'le="+Inf"'
            lines.append(f"{name}_bucket{_labels(p.attributes, inf)} {p.count}")
            lines.append(f"{name}_sum{_labels(p.attributes)} {p.sum}")
            lines.append(f"{name}_count{_labels(p.attributes)} {p.count}")
