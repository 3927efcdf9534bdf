"""Batch processor: joins requests into fewer, larger ones.

Serialized OTLP requests concatenate into one valid request (repeated `resource_spans`
merge on the wire), so a batch is a list of byte strings joined at flush time: no span is
parsed or rebuilt. Only a request larger than `send_batch_max_size` is parsed, to split.
Events (goblock observations) are batched alongside and never counted as items.
"""

from __future__ import annotations

import asyncio
import contextlib

from otel_goblock.processors.batch.config import Config

from otel_goblock.component import Component, CreateSettings, Host
from otel_goblock.consumer import ConsumerError
from otel_goblock.pdata import Event, Metrics, RequestInfo, Traces, count_spans


class _Buffer:
    __slots__ = ("chunks", "events", "items")

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.items = 0
        self.events: list[Event] = []


class BatchProcessor(Component):
    def __init__(self, settings: CreateSettings, config: Config, next_consumer: object) -> None:
        self._cfg = config
        self._next = next_consumer
        self._signal = next(iter(settings.signals)) if settings.signals else "traces"
        self._buf = _Buffer()
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._log = settings.logger
        attrs = {"processor": str(settings.id)}
        self._attrs = attrs
        m = settings.meter
        self._sent_size = m.create_histogram(
            "otelcol_processor_batch_batch_send_size",
            unit="{items}",
            description="Number of items in a batch that was sent",
        )
        self._timeout_trigger = m.create_counter(
            "otelcol_processor_batch_timeout_trigger_send",
            description="Batches sent because the timeout was reached",
        )
        self._size_trigger = m.create_counter(
            "otelcol_processor_batch_batch_size_trigger_send",
            description="Batches sent because send_batch_size was reached",
        )
        self._dropped = m.create_counter(
            "otelcol_processor_batch_dropped_items",
            description="Items the next consumer refused after batching (logged)",
        )

    async def start(self, host: Host) -> None:
        self._timer = asyncio.create_task(self._run_timer())

    async def consume_traces(self, data: Traces) -> None:
        await self._add(
            data.serialized() if data.span_count else b"", data.span_count, data.events, data
        )

    async def consume_metrics(self, data: Metrics) -> None:
        await self._add(data.serialized(), data.data_point_count, [], data)

    async def _add(
        self, raw: bytes, items: int, events: list[Event], data: Traces | Metrics
    ) -> None:
        limit = self._cfg.send_batch_max_size
        if limit and items > limit:
            for part, n in self._split(data, limit):
                await self._add(part, n, [], data)
            raw, items = b"", 0
            if not events:
                return
        async with self._lock:
            if raw:
                if limit and self._buf.items + items > limit:
                    await self._flush_locked(trigger="size")
                self._buf.chunks.append(raw)
                self._buf.items += items
            self._buf.events.extend(events)
            if self._cfg.send_batch_size == 0 or self._buf.items >= self._cfg.send_batch_size:
                await self._flush_locked(trigger="size")
            elif self._buf.items or self._buf.events:
                self._wake.set()

    def _split(self, data: Traces | Metrics, limit: int) -> list[tuple[bytes, int]]:
        """Cut an oversized request at resource boundaries (spans of one resource stay
        together unless one resource alone exceeds the limit, then at scope boundaries)."""
        msg = data.message()
        out: list[tuple[bytes, int]] = []
        if isinstance(data, Traces):
            cur = type(msg)()
            n = 0
            for rs in msg.resource_spans:
                for ss in rs.scope_spans:
                    spans = list(ss.spans)
                    for i in range(0, len(spans), limit):
                        chunk = spans[i : i + limit]
                        if n + len(chunk) > limit and n:
                            out.append((cur.SerializeToString(), n))
                            cur, n = type(msg)(), 0
                        new_rs = cur.resource_spans.add()
                        new_rs.resource.CopyFrom(rs.resource)
                        new_rs.schema_url = rs.schema_url
                        new_ss = new_rs.scope_spans.add()
                        new_ss.scope.CopyFrom(ss.scope)
                        new_ss.schema_url = ss.schema_url
                        new_ss.spans.extend(chunk)
                        n += len(chunk)
            if n:
                out.append((cur.SerializeToString(), n))
            assert sum(k for _, k in out) == count_spans(msg)
            return out
        # metrics: split by resource only (points of one metric stay together)
        for rm in msg.resource_metrics:
            one = type(msg)()
            one.resource_metrics.append(rm)
            out.append((one.SerializeToString(), Metrics(message=one).data_point_count))
        return out

    async def _run_timer(self) -> None:
        timeout = float(self._cfg.timeout)
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(timeout)
            async with self._lock:
                if self._buf.items or self._buf.events:
                    await self._flush_locked(trigger="timeout")

    async def _flush_locked(self, trigger: str) -> None:
        buf, self._buf = self._buf, _Buffer()
        if not buf.items and not buf.events:
            return
        raw = b"".join(buf.chunks)
        (self._size_trigger if trigger == "size" else self._timeout_trigger).add(1, self._attrs)
        self._sent_size.record(buf.items, self._attrs)
        try:
            if self._signal == "traces":
                await self._next.consume_traces(  # type: ignore[attr-defined]
                    Traces(
                        raw=raw,
                        span_count=buf.items,
                        events=buf.events,
                        info=RequestInfo(transport="batch"),
                    )
                )
            else:
                await self._next.consume_metrics(  # type: ignore[attr-defined]
                    Metrics(raw=raw, data_point_count=buf.items)
                )
        except ConsumerError as e:
            # As in the collector: the request was already acknowledged upstream. The
            # exporter that refused it has counted the loss (enqueue_failed); say it here too.
            self._dropped.add(buf.items, self._attrs)
            self._log.warning(
                "next consumer refused a batch; items dropped",
                extra={"items": buf.items, "error": str(e)},
            )

    async def shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        async with self._lock:
            await self._flush_locked(trigger="shutdown")
