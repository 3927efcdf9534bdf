"""The collector's exporterhelper: sending queue, retries with backoff, per-attempt
timeout, and the `otelcol_exporter_*` self-telemetry, around an exporter's plain
`send` functions.

An exporter only writes `async send(data, timeout_s) -> rejected_count` per signal (raising
`ExportFailure` or any exception on failure); this module decides when to retry, what to
drop and what to count, so every exporter behaves the same:

* queue enabled: `consume_*` enqueues and returns at once; a full queue (or a shutting
  down exporter) refuses with `RetryableError` and counts the refused items in
  `otelcol_exporter_enqueue_failed_*`, so the receiver answers UNAVAILABLE and the loss
  is exactly that counter. Data that fails after the retries is dropped, logged and
  counted in `otelcol_exporter_send_failed_*`.
* queue disabled: `consume_*` sends (with retries) in the caller's task, and a failure is
  raised to the caller (`RetryableError` or `PermanentError`).
* shutdown stops accepting and drains the queue; when the caller's deadline cancels it
  (`asyncio.wait_for(exporter.shutdown(), t)`), the sends in flight stop, and what was
  still queued or in flight is logged with its count and counted as send-failed.

Accounting identity, per signal: items handed to `consume_*` = sent + send_failed +
enqueue_failed (+ items still queued while running).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation

from otel_goblock.component import CreateSettings
from otel_goblock.consumer import PermanentError, RetryableError
from otel_goblock.exporterhelper.backoff import ExponentialBackoff
from otel_goblock.exporterhelper.config import QueueConfig, RetryConfig, TimeoutConfig
from otel_goblock.exporterhelper.errors import ExportFailure
from otel_goblock.exporterhelper.queues import MemoryQueue, PersistentQueue
from otel_goblock.pdata import Metrics, Traces

_FULL_LOG_EVERY_S = 5.0

# send(data, timeout_s) -> number of items the receiving end rejected (partial success)
SendFunc = Callable[[Any, float], Awaitable[int]]


@dataclass
class _Signal:
    name: str  # "traces" | "metrics"
    unit: str  # "spans" | "metric_points"
    send: SendFunc
    count: Callable[[Any], int]
    queue: MemoryQueue | None = None
    workers: list[asyncio.Task[None]] = field(default_factory=list)
    inflight: dict[asyncio.Task[None], int] = field(default_factory=dict)
    # plain integers, reported through observable counters: an SDK `Counter.add` (attribute
    # hashing, locks) per request cost more than the rest of the helper together
    sent: int = 0
    failed: int = 0
    enqueue_failed: int = 0
    refused_since_log: int = 0
    last_full_log: float = float("-inf")


def _spans(data: Traces) -> int:
    return data.span_count


def _points(data: Metrics) -> int:
    return data.data_point_count


def _traces_from(raw: bytes, n: int) -> Traces:
    return Traces(raw=raw, span_count=n)


def _metrics_from(raw: bytes, n: int) -> Metrics:
    return Metrics(raw=raw, data_point_count=n)


class ExporterHelper:
    """Queue + retry + timeout + telemetry for one exporter id (one queue per signal)."""

    def __init__(
        self,
        settings: CreateSettings,
        *,
        queue: QueueConfig,
        retry: RetryConfig,
        timeout: TimeoutConfig,
        send_traces: SendFunc | None = None,
        send_metrics: SendFunc | None = None,
    ) -> None:
        self._log = settings.logger
        self._queue_cfg = queue
        self._retry_cfg = retry
        self._timeout = float(timeout.timeout)
        self._attrs = {"exporter": str(settings.id)}
        self._closing = False
        self._started = False
        meter = settings.meter
        self._signals: dict[str, _Signal] = {}
        for name, unit, send, count in (
            ("traces", "spans", send_traces, _spans),
            ("metrics", "metric_points", send_metrics, _points),
        ):
            if send is None or (settings.signals and name not in settings.signals):
                continue
            what = "spans" if unit == "spans" else "metric points"
            sig = _Signal(name, unit, send, count)
            for field_, metric, desc in (
                ("sent", "sent", f"Number of {what} successfully sent to destination."),
                ("failed", "send_failed", f"Number of {what} in failed attempts to send."),
                ("enqueue_failed", "enqueue_failed", f"Number of {what} refused by the queue."),
            ):
                meter.create_observable_counter(
                    f"otelcol_exporter_{metric}_{unit}",
                    [self._observer(sig, field_)],
                    description=desc,
                )
            if queue.enabled and queue.storage:
                rebuild = _traces_from if name == "traces" else _metrics_from
                safe_id = str(settings.id).replace("/", "_")
                sig.queue = PersistentQueue(
                    Path(queue.storage) / safe_id / name,
                    queue.queue_size,
                    serialize=lambda d: d.serialized(),
                    count=count,
                    rebuild=rebuild,
                )
            elif queue.enabled:
                sig.queue = MemoryQueue(queue.queue_size, count)
            self._signals[name] = sig
        if queue.enabled and self._signals:
            meter.create_observable_gauge(
                "otelcol_exporter_queue_size",
                [self._observe_size],
                description="Current size of the retry queue (in batches)",
            )
            meter.create_observable_gauge(
                "otelcol_exporter_queue_capacity",
                [self._observe_capacity],
                description="Fixed capacity of the retry queue (in batches)",
            )

    # -- telemetry ---------------------------------------------------------------------
    def _observer(
        self, sig: _Signal, field_: str
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            yield Observation(getattr(sig, field_), self._attrs)

        return observe

    def _observe_size(self, _: CallbackOptions) -> Iterable[Observation]:
        for sig in self._signals.values():
            if sig.queue is not None:
                yield Observation(sig.queue.qsize(), {**self._attrs, "data_type": sig.name})

    def _observe_capacity(self, _: CallbackOptions) -> Iterable[Observation]:
        for sig in self._signals.values():
            if sig.queue is not None:
                yield Observation(sig.queue.capacity, {**self._attrs, "data_type": sig.name})

    def queue_size(self, signal: str) -> int:
        q = self._signals[signal].queue
        return q.qsize() if q is not None else 0

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if not self._queue_cfg.enabled:
            return
        for sig in self._signals.values():
            if isinstance(sig.queue, PersistentQueue) and sig.queue.recovered_items:
                self._log.info(
                    "resuming %d %s (%d requests) left in %s by a previous run",
                    sig.queue.recovered_items,
                    sig.unit.replace("_", " "),
                    sig.queue.qsize(),
                    sig.queue.directory,
                )
            for i in range(self._queue_cfg.num_consumers):
                task = asyncio.create_task(
                    self._worker(sig), name=f"{self._attrs['exporter']}/{sig.name}/{i}"
                )
                sig.workers.append(task)

    async def shutdown(self) -> None:
        """Stop accepting, drain the queues; on cancellation count and log what is lost."""
        if self._closing:
            return
        self._closing = True
        queued = [s for s in self._signals.values() if s.queue is not None]
        try:
            for sig in queued:
                if sig.workers:
                    await sig.queue.join()  # type: ignore[union-attr]
        except asyncio.CancelledError:
            self._abandon(queued)
            raise
        finally:
            for sig in queued:
                for t in sig.workers:
                    t.cancel()
            for sig in queued:
                # the workers account for what they held when cancelled
                await asyncio.gather(*sig.workers, return_exceptions=True)
                sig.workers.clear()
                sig.queue.close()  # type: ignore[union-attr]

    def _abandon(self, signals: list[_Signal]) -> None:
        """The shutdown deadline came: what is queued or in flight will not be sent."""
        for sig in signals:
            in_flight = list(sig.inflight.values())
            for t in sig.workers:
                t.cancel()
            lost_items, lost_reqs = sum(in_flight), len(in_flight)
            q = sig.queue
            assert q is not None
            while not q.empty():
                item = q.get_nowait()
                q.task_done()
                lost_items += q.items_of(item)
                lost_reqs += 1
            sig.inflight.clear()
            if q.persistent:
                if lost_reqs:
                    self._log.warning(
                        "shutdown deadline reached: %d %s (%d requests) stay in %s "
                        "for the next start",
                        lost_items,
                        sig.unit.replace("_", " "),
                        lost_reqs,
                        q.directory,  # type: ignore[attr-defined]
                    )
                continue
            if lost_items or lost_reqs:
                sig.failed += lost_items
                self._log.error(
                    "shutdown deadline reached before the sending queue drained: "
                    "%d %s dropped (%d requests)",
                    lost_items,
                    sig.unit.replace("_", " "),
                    lost_reqs,
                    extra={"dropped_items": lost_items, "data_type": sig.name},
                )

    # -- data path -----------------------------------------------------------------------
    async def consume_traces(self, data: Traces) -> None:
        await self._consume("traces", data)

    async def consume_metrics(self, data: Metrics) -> None:
        await self._consume("metrics", data)

    async def _consume(self, signal: str, data: Any) -> None:
        sig = self._signals.get(signal)
        if sig is None:  # a pipeline wiring error: say so rather than drop silently
            raise PermanentError(f"exporter {self._attrs['exporter']} does not export {signal}")
        n = sig.count(data)
        if n == 0:
            return  # nothing to export (events only, or an empty request)
        if sig.queue is None:
            await self._send_now(sig, data, n)
            return
        if self._closing:
            sig.enqueue_failed += n
            raise RetryableError("exporter is shutting down")
        if not self._started:
            await self.start()
        try:
            sig.queue.offer(data)
        except asyncio.QueueFull:
            sig.enqueue_failed += n
            self._warn_full(sig, n)
            raise RetryableError("sending queue is full") from None
        except OSError as e:  # persistent queue: the disk is full or gone
            sig.enqueue_failed += n
            self._log.error("cannot store the request in the sending queue: %s", e)
            raise RetryableError(f"sending queue storage failed: {e}") from None

    def _warn_full(self, sig: _Signal, n: int) -> None:
        """At most one warning per `_FULL_LOG_EVERY_S` under overload, with the count since
        the last one: a refusal per request must not become a log line per request."""
        sig.refused_since_log += n
        now = time.monotonic()
        if now - sig.last_full_log < _FULL_LOG_EVERY_S:
            return
        self._log.warning(
            "sending queue is full: %d %s refused since the last report",
            sig.refused_since_log,
            sig.unit.replace("_", " "),
            extra={"dropped_items": sig.refused_since_log, "data_type": sig.name},
        )
        sig.refused_since_log = 0
        sig.last_full_log = now

    async def _send_now(self, sig: _Signal, data: Any, n: int) -> None:
        """Queue disabled: the caller waits and learns the outcome."""
        try:
            rejected = await self._send_with_retry(sig, data)
        except ExportFailure as e:
            sig.failed += n
            self._log.error("exporting failed: %s", e, extra={"dropped_items": n})
            if e.retryable:
                raise RetryableError(str(e), e.throttle_s or 1.0) from e
            raise PermanentError(str(e)) from e
        self._account(sig, n, rejected)

    def _account(self, sig: _Signal, n: int, rejected: int) -> None:
        rejected = max(0, min(rejected, n))
        if n - rejected:
            sig.sent += n - rejected
        if rejected:
            sig.failed += rejected

    async def _worker(self, sig: _Signal) -> None:
        q = sig.queue
        assert q is not None
        me = asyncio.current_task()
        assert me is not None
        while True:
            item = await q.get()
            n = q.items_of(item)
            sig.inflight[me] = n
            try:
                data = q.load(item)
                rejected = await self._send_with_retry(sig, data)
            except ExportFailure as e:
                sig.failed += n
                self._log.error(
                    "exporting failed, dropping data: %s",
                    e,
                    extra={"dropped_items": n, "data_type": sig.name},
                )
            except asyncio.CancelledError:
                # cancelled by a shutdown deadline: `_abandon` accounted for what we held,
                # unless the cancel came from elsewhere; a stored request stays on disk
                if sig.inflight.pop(me, None) is not None and not q.persistent:
                    sig.failed += n
                    self._log.error("exporter stopped: %d %s dropped", n, sig.unit)
                q.task_done()
                raise
            except Exception as e:  # a bug in a send function must not kill the worker
                sig.failed += n
                self._log.exception("exporting failed, dropping data: %s", e)
            else:
                self._account(sig, n, rejected)
            q.done(item)  # sent or given up: a stored request is removed
            sig.inflight.pop(me, None)
            q.task_done()

    async def _send_with_retry(self, sig: _Signal, data: Any) -> int:
        """One request until it is sent, fails permanently, or the retries run out."""
        backoff: ExponentialBackoff | None = None  # made at the first failure: rare
        started = time.monotonic()
        while True:
            try:
                async with asyncio.timeout(self._timeout):
                    return await sig.send(data, self._timeout)
            except ExportFailure as e:
                err = e
            except TimeoutError:
                err = ExportFailure(
                    f"export attempt timed out after {self._timeout:g}s", retryable=True
                )
            except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
                raise
            except Exception as e:  # connection refused/reset: retryable, as in the collector
                err = ExportFailure(f"{type(e).__name__}: {e}", retryable=True)
            if not err.retryable:
                raise ExportFailure(f"not retryable error: {err}", retryable=False)
            if not self._retry_cfg.enabled:
                raise err
            if backoff is None:
                backoff = ExponentialBackoff(self._retry_cfg, start=started)
            delay = backoff.next()
            if delay is None:
                raise ExportFailure(
                    f"no more retries left: {err}", retryable=True, throttle_s=err.throttle_s
                )
            if err.throttle_s is not None:
                delay = max(delay, err.throttle_s)
            self._log.info(
                "exporting failed, will retry the request after %.3gs: %s",
                delay,
                err,
                extra={"data_type": sig.name, "interval_s": delay},
            )
            await asyncio.sleep(delay)
