"""The only way components talk: consumers of traces and metrics (collector `consumer`).

A consumer either accepts the data (returns) or raises a `ConsumerError`.  Retryable
errors travel back to the receiver, which turns them into UNAVAILABLE / 503 so that the
client retries and nothing is dropped silently; permanent errors become INVALID_ARGUMENT
/ 400 (the data will never be accepted).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from otel_goblock.pdata import Metrics, Traces


class ConsumerError(Exception):
    """Base of the errors a consumer raises."""


class RetryableError(ConsumerError):
    """Try again later (memory limit reached, queue full, downstream unavailable)."""

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentError(ConsumerError):
    """The data is bad and will never be accepted."""


@runtime_checkable
class TracesConsumer(Protocol):
    async def consume_traces(self, data: Traces) -> None: ...


@runtime_checkable
class MetricsConsumer(Protocol):
    async def consume_metrics(self, data: Metrics) -> None: ...


class FanoutTraces:
    """Hands the same traces to several consumers (a receiver in several pipelines).

    Each consumer gets the same object: consumers that edit must copy (as in the collector,
    where fan-out clones for mutating consumers). The goblock processor copies before edits.
    """

    def __init__(self, consumers: list[TracesConsumer]) -> None:
        self._consumers = consumers

    async def consume_traces(self, data: Traces) -> None:
        if len(self._consumers) == 1:
            await self._consumers[0].consume_traces(data)
            return
        errors: list[ConsumerError] = []
        for c in self._consumers:
            try:
                await c.consume_traces(data)
            except ConsumerError as e:
                errors.append(e)
        if errors:
            raise errors[0]


class FanoutMetrics:
    def __init__(self, consumers: list[MetricsConsumer]) -> None:
        self._consumers = consumers

    async def consume_metrics(self, data: Metrics) -> None:
        if len(self._consumers) == 1:
            await self._consumers[0].consume_metrics(data)
            return
        errors: list[ConsumerError] = []
        for c in self._consumers:
            try:
                await c.consume_metrics(data)
            except ConsumerError as e:
                errors.append(e)
        if errors:
            raise errors[0]
