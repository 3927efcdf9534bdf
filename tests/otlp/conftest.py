"""A real otlp receiver on free ports, run on its own event loop thread.

The receiver runs in a background thread so that tests can drive it with the real,
blocking clients (the OTel SDK exporters, grpc channels, requests). What it delivers goes
to `RecordingConsumer`, a sink that keeps what it got — and, when a test sets `fail`,
raises that error the way a full pipeline would (memory_limiter raises RetryableError);
that is the only fault injected here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from otel_goblock.receivers.otlp.config import Config
from otel_goblock.receivers.otlp.factory import FACTORY

from otel_goblock.component import ComponentID, Consumers, CreateSettings
from otel_goblock.config import decode
from otel_goblock.pdata import Metrics, Traces

LOCAL = "127.0.0.1:0"  # port 0: the kernel picks a free port (never the well-known ones)


class RecordingConsumer:
    def __init__(self) -> None:
        self.traces: list[Traces] = []
        self.metrics: list[Metrics] = []
        self.fail: BaseException | None = None
        self.fail_times = 0  # with `fail`: refuse this many calls, then accept again
        self.calls = 0
        self.delay_s = 0.0  # a slow pipeline: each call takes this long before accepting

    def _maybe_fail(self) -> None:
        self.calls += 1
        if self.fail is not None:
            err = self.fail
            if self.fail_times:
                self.fail_times -= 1
                if not self.fail_times:
                    self.fail = None
            raise err

    async def consume_traces(self, data: Traces) -> None:
        self._maybe_fail()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.traces.append(data)

    async def consume_metrics(self, data: Metrics) -> None:
        self._maybe_fail()
        self.metrics.append(data)


class RunningReceiver:
    def __init__(self, config: dict[str, Any], signals: tuple[str, ...]) -> None:
        self.consumer = RecordingConsumer()
        self.reader = InMemoryMetricReader()
        self._provider = MeterProvider(metric_readers=[self.reader])
        settings = CreateSettings(
            id=ComponentID("otlp", "test"),
            kind="receiver",
            logger=logging.getLogger("otlp.test"),
            meter=self._provider.get_meter("otlp.test"),
        )
        cfg = decode(Config, config, "receivers.otlp")
        nxt = Consumers(
            traces=self.consumer if "traces" in signals else None,
            metrics=self.consumer if "metrics" in signals else None,
        )
        self.receiver = FACTORY.create(settings, cfg, nxt)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.run(self.receiver.start(None))

    def run(self, coro: Any, timeout: float = 30) -> Any:
        fut: Future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    @property
    def grpc_target(self) -> str:
        return self.receiver.grpc_address

    def http_url(self, path: str = "/v1/traces", scheme: str = "http") -> str:
        return f"{scheme}://{self.receiver.http_address}{path}"

    def counter(self, name: str, transport: str) -> int:
        """Current value of a self-telemetry counter for this receiver and transport."""
        data = self.reader.get_metrics_data()
        total = 0
        for rm in data.resource_metrics if data else ():
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name != name:
                        continue
                    for dp in m.data.data_points:
                        if dp.attributes.get("transport") == transport:
                            assert dp.attributes.get("receiver") == "otlp/test"
                            total += dp.value
        return total

    def close(self) -> None:
        try:
            self.run(self.receiver.shutdown())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)
            self.loop.close()
            self._provider.shutdown()


def both(**overrides: Any) -> dict[str, Any]:
    """Config with both protocols on free local ports; overrides per protocol."""
    grpc_cfg = {"endpoint": LOCAL, **overrides.get("grpc", {})}
    http_cfg = {"endpoint": LOCAL, **overrides.get("http", {})}
    return {"protocols": {"grpc": grpc_cfg, "http": http_cfg}}


@pytest.fixture
def start_receiver() -> Iterator[Callable[..., RunningReceiver]]:
    started: list[RunningReceiver] = []

    def start(
        config: dict[str, Any] | None = None, signals: tuple[str, ...] = ("traces", "metrics")
    ) -> RunningReceiver:
        r = RunningReceiver(config if config is not None else both(), signals)
        started.append(r)
        return r

    yield start
    for r in started:
        r.close()


@pytest.fixture
def receiver(start_receiver: Callable[..., RunningReceiver]) -> RunningReceiver:
    return start_receiver()
