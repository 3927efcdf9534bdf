"""CPU pacing (service.cpu_pacing): the main thread rests after it has held the CPU, and
only then: a busy worker thread must not put an idle event loop to sleep. Counts, not
timings (those are benchmarks/contention.py's)."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from otel_goblock.component import default_registry
from otel_goblock.config import ConfigError
from otel_goblock.config.loader import load_text
from otel_goblock.pacing import Pacer
from otel_goblock.service_config import build_config

BASE = """
receivers: {otlp: {protocols: {grpc: {}}}}
exporters: {debug: {}}
service:
  pipelines: {traces: {receivers: [otlp], exporters: [debug]}}
"""


def _burn(cpu_s: float) -> None:
    end = time.thread_time() + cpu_s
    while time.thread_time() < end:
        pass


def test_the_main_thread_rests_while_it_burns_cpu() -> None:
    pacer = Pacer(0.001, 0.0005)
    pacer.start()
    try:
        _burn(0.1)
    finally:
        pacer.stop()
    # ~100 expiries of 1 ms of CPU; each finds the main thread did the work
    assert pacer.checks >= 20
    assert pacer.rests >= pacer.checks - 2
    assert signal.getsignal(signal.SIGPROF) == signal.SIG_DFL  # stop() hands it back
    assert signal.getitimer(signal.ITIMER_PROF) == (0.0, 0.0)


def test_a_busy_worker_thread_does_not_put_the_main_thread_to_sleep() -> None:
    pacer = Pacer(0.001, 0.0005)
    worker = threading.Thread(target=_burn, args=(0.2,))
    pacer.start()
    try:
        worker.start()
        while worker.is_alive():  # the main thread idles, as an event loop in its select
            worker.join(0.01)
    finally:
        pacer.stop()
    # the timer counts the worker's CPU and fired (expiries coalesce while the main
    # thread waits: it handles them each time it wakes, every 10 ms here)
    assert pacer.checks >= 8
    assert pacer.rests <= 2  # ... but the main thread was not the one at work


def test_pacing_is_off_by_default_and_checked() -> None:
    cfg = build_config(load_text(BASE), default_registry())
    assert cfg.service.cpu_pacing.enabled is False
    cfg = build_config(
        load_text(BASE + "  cpu_pacing: {enabled: true, run: 2ms, rest: 500us}\n"),
        default_registry(),
    )
    assert (float(cfg.service.cpu_pacing.run), float(cfg.service.cpu_pacing.rest)) == (
        0.002,
        0.0005,
    )
    with pytest.raises(ConfigError) as e:
        build_config(
            load_text(BASE + "  cpu_pacing: {enabled: true, rest: 0s, burst: 1ms}\n"),
            default_registry(),
        )
    problems = "\n".join(e.value.problems)
    assert "service.cpu_pacing.burst: unknown key" in problems
    with pytest.raises(ConfigError) as e2:
        build_config(load_text(BASE + "  cpu_pacing: {rest: 0s}\n"), default_registry())
    assert "service.cpu_pacing.rest: 0s is outside" in "\n".join(e2.value.problems)
