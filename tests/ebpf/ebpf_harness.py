"""Helpers of the eBPF receiver tests and benchmark: target program, receiver runner, sink.

BPF tests need root (or CAP_BPF+CAP_PERFMON) and a working BCC; without them they skip,
unless GOBLOCK_REQUIRE_EBPF=1 (CI), where a missing capability is a failure.  The receiver
is compiled and attached once per session (`receiver`); tests tell their processes apart
by pid.  The target program is built from tests/ebpf/fixtures/gbfx with `go build`, cached
under build/test-fixtures by source hash.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ebpfgate import require_ebpf  # noqa: F401  (the tests import the gate from here)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_goblock.component import ComponentID, Consumers, CreateSettings, Host
from otel_goblock.config import decode
from otel_goblock.pdata import Event, Metrics, Traces

REPO = Path(__file__).resolve().parents[2]
FIXTURE_SRC = REPO / "tests" / "ebpf" / "fixtures" / "gbfx"
FIXTURE_CACHE = REPO / "build" / "test-fixtures"
GO = os.environ.get("GO", "/usr/local/go/bin/go")


class Sink:
    """A consumer that keeps everything it is given (thread-safe reads for the tests)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.events: list[Event] = []
        self.metrics: list[Metrics] = []
        self.batches = 0
        self.delay_s = delay_s
        self._lock = threading.Lock()

    async def consume_traces(self, traces: Traces) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        with self._lock:
            self.events.extend(traces.events)
            self.batches += 1

    async def consume_metrics(self, metrics: Metrics) -> None:
        with self._lock:
            self.metrics.append(metrics)

    def of(self, pid: int, kind: str | None = None) -> list[Event]:
        with self._lock:
            return [e for e in self.events if e.pid == pid and (kind is None or e.kind == kind)]

    def wait_for(self, pred: Callable[[], bool], timeout: float = 5.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            time.sleep(0.05)
        return pred()


class _Host(Host):
    def __init__(self) -> None:
        self.fatal: list[BaseException] = []

    def get_extension(self, id_: str):
        return None

    def report_fatal_error(self, err: BaseException) -> None:
        self.fatal.append(err)


class LoopThread:
    """An asyncio loop on a thread: components are async, the tests are not."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._t = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._t.start()

    def run(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._t.join(5)


class Running:
    """A started receiver with its sink, meter reader and loop."""

    def __init__(self, cfg: dict, name: str = "", sink: Sink | None = None) -> None:
        from otel_goblock.receivers.ebpf.config import Config
        from otel_goblock.receivers.ebpf.receiver import EbpfReceiver

        self.reader = InMemoryMetricReader()
        self.sink = sink or Sink()
        self.loop = LoopThread()
        settings = CreateSettings(
            id=ComponentID("ebpf", name),
            kind="receiver",
            logger=logging.getLogger(f"test.ebpf.{name or 'session'}"),
            meter=MeterProvider(metric_readers=[self.reader]).get_meter("test"),
        )
        self.receiver = EbpfReceiver(
            settings, decode(Config, cfg), Consumers(traces=self.sink, metrics=self.sink)
        )
        self.host = _Host()

    def start(self) -> Running:
        self.loop.run(self.receiver.start(self.host))
        return self

    def stop(self) -> None:
        try:
            self.loop.run(self.receiver.shutdown())
        finally:
            self.loop.close()

    def counter(self, name: str) -> int:
        data = self.reader.get_metrics_data()
        total = 0
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        total += sum(int(dp.value) for dp in m.data.data_points)
        return total


class Proc:
    """A running gbfx process whose `key=value` output lines are collected."""

    def __init__(self, argv: list[str]) -> None:
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.append(line.strip())

    @property
    def pid(self) -> int:
        return self.p.pid

    def value(self, key: str, timeout: float = 10.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in list(self.lines):
                m = re.search(rf"(?:^| ){re.escape(key)}=(\S+)", line)
                if m:
                    return m.group(1)
            time.sleep(0.01)
        raise TimeoutError(f"gbfx printed no {key}= (got {self.lines})")

    def values(self, key: str) -> list[str]:
        out = []
        for line in list(self.lines):
            m = re.search(rf"(?:^| ){re.escape(key)}=(\S+)", line)
            if m:
                out.append(m.group(1))
        return out

    def wait(self, timeout: float = 30.0) -> int:
        rc = self.p.wait(timeout)
        self._t.join(5)
        return rc

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(5)
