"""exporterhelper on its own: backoff arithmetic, error classification, accounting.

The send functions here are small real implementations of the exporter interface
(`async send(data, timeout_s) -> rejected`), each scripted to produce an outcome a real
server cannot be made to produce on cue (an arbitrary exception type, a hang)."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import random

import grpc
import pytest
from exporter_sinks import Telemetry, metrics, traces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otel_goblock.config import decode
from otel_goblock.consumer import PermanentError, RetryableError
from otel_goblock.exporterhelper import (
    ExporterHelper,
    ExportFailure,
    QueueConfig,
    RetryConfig,
    TimeoutConfig,
)
from otel_goblock.exporterhelper.backoff import ExponentialBackoff
from otel_goblock.exporterhelper.errors import from_http, grpc_retry_info, retry_after_s

FAST = {"initial_interval": "10ms", "max_interval": "20ms", "randomization_factor": 0}


def test_backoff_grows_caps_and_stops() -> None:
    now = [0.0]
    cfg = decode(
        RetryConfig,
        {"randomization_factor": 0, "max_elapsed_time": "120s"},
    )
    b = ExponentialBackoff(cfg, clock=lambda: now[0])
    waits = []
    while (w := b.next()) is not None:
        waits.append(w)
        now[0] += w
    assert waits[:4] == [5.0, 7.5, 11.25, 16.875]
    assert max(waits) == 30.0
    assert sum(waits) <= 120.0 < sum(waits) + 30.0


def test_backoff_jitter_within_factor() -> None:
    cfg = RetryConfig()  # initial 5s, factor 0.5
    b = ExponentialBackoff(cfg, rng=random.Random(1))
    first = b.next()
    assert first is not None and 2.5 <= first <= 7.5


def test_retry_after_forms() -> None:
    assert retry_after_s("120") == 120.0
    date = email.utils.formatdate(1_000_030, usegmt=True)
    assert retry_after_s(date, now=1_000_000) == pytest.approx(30.0)
    assert retry_after_s("soon") is None and retry_after_s(None) is None


def test_http_classification() -> None:
    for status in (429, 502, 503, 504):
        assert from_http(status, {}, b"").retryable
    for status in (400, 401, 403, 404, 413, 500, 501):
        assert not from_http(status, {}, b"").retryable
    assert from_http(429, {"Retry-After": "3"}, b"").throttle_s == 3.0


def test_grpc_retry_info_parsing() -> None:
    from exporter_sinks import retry_info_status

    detail = retry_info_status(8, "slow", 1.25)
    assert grpc_retry_info((("grpc-status-details-bin", detail),)) == 1.25
    assert grpc_retry_info((("other", b"x"),)) is None
    assert grpc_retry_info((("grpc-status-details-bin", b"\xff garbage"),)) is None
    assert grpc.StatusCode.RESOURCE_EXHAUSTED.value[0] == 8


def helper(
    tel: Telemetry, send, queue: dict | None = None, retry: dict | None = None, timeout: str = "5s"
) -> ExporterHelper:  # type: ignore[no-untyped-def]
    return ExporterHelper(
        tel.settings("x"),
        queue=decode(QueueConfig, queue or {}),
        retry=decode(RetryConfig, {**FAST, **(retry or {})}),
        timeout=decode(TimeoutConfig, {"timeout": timeout}),
        send_traces=send,
        send_metrics=send,
    )


async def test_any_exception_is_retried_and_attempts_time_out() -> None:
    calls = []

    async def send(data, timeout_s):  # type: ignore[no-untyped-def]
        calls.append(timeout_s)
        if len(calls) == 1:
            raise ConnectionResetError("peer reset")
        if len(calls) == 2:
            await asyncio.sleep(10)  # hangs: the attempt timeout must cut it
        return 0

    tel = Telemetry()
    h = helper(tel, send, queue={"enabled": False}, timeout="100ms")
    await h.consume_traces(traces(3))
    assert len(calls) == 3 and calls[0] == pytest.approx(0.1)
    assert tel.value("otelcol_exporter_sent_spans") == 3


async def test_queue_disabled_maps_errors_for_the_receiver() -> None:
    async def throttled(data, timeout_s):  # type: ignore[no-untyped-def]
        raise ExportFailure("busy", retryable=True, throttle_s=7.0)

    tel = Telemetry()
    h = helper(tel, throttled, queue={"enabled": False}, retry={"enabled": False})
    with pytest.raises(RetryableError) as e:
        await h.consume_metrics(metrics(4))
    assert e.value.retry_after_s == 7.0
    assert tel.value("otelcol_exporter_send_failed_metric_points") == 4

    async def bad(data, timeout_s):  # type: ignore[no-untyped-def]
        raise ExportFailure("bad data", retryable=False)

    h = helper(tel, bad, queue={"enabled": False})
    with pytest.raises(PermanentError, match="bad data"):
        await h.consume_traces(traces(1))


async def test_retries_give_up_after_max_elapsed_time() -> None:
    calls = 0

    async def down(data, timeout_s):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        raise ExportFailure("unavailable", retryable=True)

    tel = Telemetry()
    h = helper(tel, down, queue={"enabled": False}, retry={"max_elapsed_time": "200ms"})
    with pytest.raises(RetryableError, match="no more retries left"):
        await h.consume_traces(traces(2))
    assert 5 <= calls <= 25


async def test_metric_points_overflow_counted_exactly() -> None:
    gate = asyncio.Event()

    async def blocked(data, timeout_s):  # type: ignore[no-untyped-def]
        await gate.wait()
        return 0

    tel = Telemetry()
    h = helper(tel, blocked, queue={"queue_size": 5, "num_consumers": 1})
    await h.start()
    refused = accepted = 0
    for i in range(20):
        m = metrics(1 + i % 4)
        try:
            await h.consume_metrics(m)
            accepted += m.data_point_count
        except RetryableError:
            refused += m.data_point_count
        await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(h.shutdown(), 5)
    assert tel.value("otelcol_exporter_enqueue_failed_metric_points") == refused > 0
    assert tel.value("otelcol_exporter_sent_metric_points") == accepted


async def test_unknown_signal_is_an_error_not_a_silent_drop() -> None:
    async def send(data, timeout_s):  # type: ignore[no-untyped-def]
        return 0

    tel = Telemetry()
    h = ExporterHelper(
        tel.settings("x"),
        queue=QueueConfig(),
        retry=RetryConfig(),
        timeout=TimeoutConfig(),
        send_traces=send,
    )
    with pytest.raises(PermanentError, match="does not export metrics"):
        await h.consume_metrics(metrics(1))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    outcomes=st.lists(
        st.sampled_from(["ok", "partial", "flaky", "permanent", "exhausted"]),
        min_size=1,
        max_size=30,
    ),
    sizes=st.lists(st.integers(1, 9), min_size=30, max_size=30),
    queue_size=st.integers(1, 8),
)
def test_accounting_identity(outcomes: list[str], sizes: list[int], queue_size: int) -> None:
    """Whatever happens to each request: handed in = sent + send_failed + enqueue_failed."""

    async def scenario() -> None:
        plan: dict[bytes, list[str]] = {}

        async def send(data, timeout_s):  # type: ignore[no-untyped-def]
            steps = plan[data.serialized()]
            step = steps.pop(0) if len(steps) > 1 else steps[0]
            if step == "ok":
                return 0
            if step == "partial":
                return 1
            if step == "flaky":
                raise ExportFailure("unavailable", retryable=True)
            if step == "permanent":
                raise ExportFailure("bad", retryable=False)
            raise ExportFailure("still down", retryable=True)  # until max_elapsed_time

        tel = Telemetry()
        h = helper(
            tel,
            send,
            queue={"queue_size": queue_size, "num_consumers": 2},
            retry={"initial_interval": "1ms", "max_interval": "2ms", "max_elapsed_time": "30ms"},
        )
        await h.start()
        total = 0
        for i, outcome in enumerate(outcomes):
            t = traces(sizes[i], seed=i)
            plan[t.serialized()] = ["flaky", "ok"] if outcome == "flaky" else [outcome]
            total += t.span_count
            with contextlib.suppress(RetryableError):
                await h.consume_traces(t)
        await asyncio.wait_for(h.shutdown(), 10)
        sent = tel.value("otelcol_exporter_sent_spans")
        failed = tel.value("otelcol_exporter_send_failed_spans")
        refused = tel.value("otelcol_exporter_enqueue_failed_spans")
        assert sent + failed + refused == total

    asyncio.run(scenario())


@given(st.text(max_size=40))
def test_retry_after_never_raises(value: str) -> None:
    r = retry_after_s(value)
    assert r is None or r >= 0
