"""Per-signal export handling shared by the gRPC and HTTP servers.

Collector `internal/trace/otlp.go` and `internal/metrics/otlp.go`: decode the request once,
count what it holds, hand it to the next consumer, and record accepted / refused counts.
The request stays protobuf: the raw bytes as received travel with the parsed message, so
a pass-through pipeline forwards them without serializing again (DESIGN §3). Parsing once
here is still needed: it validates the request (malformed → INVALID_ARGUMENT before anything
is accepted) and gives the span count that self-telemetry and the batch processor use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.metrics import Meter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otel_goblock.receivers.otlp import otlpjson
from otel_goblock.receivers.otlp.errors import MalformedError

from otel_goblock.consumer import ConsumerError
from otel_goblock.pdata import Metrics, RequestInfo, Traces, count_data_points, count_spans

TRANSPORTS = ("grpc", "http")
# JSON bodies above this are decoded on a worker thread. The decoder is Python code, so it
# yields the GIL every few ms and the event loop (which also runs the gRPC server) keeps
# serving while a 20 MiB JSON body is decoded (~1 s); smaller bodies are not worth the
# thread hand-off. (upb protobuf parsing holds the GIL throughout: a thread would not help.)
_JSON_OFF_LOOP_BYTES = 256 * 1024


async def _off_loop(decode: Callable[[bytes], Any], body: bytes) -> Any:
    if len(body) > _JSON_OFF_LOOP_BYTES:
        return await asyncio.to_thread(decode, body)
    return decode(body)


class _Handler:
    """Counters keyed by transport, built once so the hot path only calls `add`."""

    signal = ""
    unit = ""

    def __init__(self, receiver_id: str, meter: Meter, logger: logging.Logger) -> None:
        self._logger = logger
        accepted = meter.create_counter(
            f"otelcol_receiver_accepted_{self.unit}",
            unit="{" + self.unit.rstrip("s") + "}",
            description=f"Number of {self.unit.replace('_', ' ')} successfully pushed "
            "into the pipeline.",
        )
        refused = meter.create_counter(
            f"otelcol_receiver_refused_{self.unit}",
            unit="{" + self.unit.rstrip("s") + "}",
            description=f"Number of {self.unit.replace('_', ' ')} that could not be pushed "
            "into the pipeline.",
        )
        self._attrs = {t: {"receiver": receiver_id, "transport": t} for t in TRANSPORTS}
        self._accepted = accepted
        self._refused = refused

    async def _push(self, consume: Any, data: Any, count: int, transport: str) -> None:
        attrs = self._attrs[transport]
        try:
            await consume(data)
        except ConsumerError as e:
            self._refused.add(count, attrs)
            self._logger.debug("%s refused by the pipeline: %s", self.signal, e)
            raise
        except Exception:
            self._refused.add(count, attrs)
            self._logger.exception("%s consumer failed unexpectedly", self.signal)
            raise
        self._accepted.add(count, attrs)

    # per signal: the request type, its OTLP/JSON decoder, the item count, the pdata wrapper
    message_type: Any = None
    decode_json: Callable[[bytes], Any]
    count: Callable[[Any], int]
    wrap: Callable[[Any, bytes | None, int, RequestInfo], Any]

    async def export_protobuf(self, raw: bytes, info: RequestInfo) -> None:
        try:
            msg = self.message_type.FromString(raw)
        except DecodeError as e:
            name = self.message_type.__name__
            raise MalformedError(f"invalid {name} protobuf: {e}") from None
        await self._export(msg, raw, info)

    async def export_json(self, body: bytes, info: RequestInfo) -> None:
        try:
            msg = await _off_loop(type(self).decode_json, body)
        except otlpjson.OTLPJSONError as e:
            raise MalformedError(f"invalid OTLP/JSON {self.signal} request: {e}") from None
        await self._export(msg, None, info)

    async def _export(self, msg: Any, raw: bytes | None, info: RequestInfo) -> None:
        n = type(self).count(msg)
        if n == 0:
            return  # nothing to deliver: OK without bothering the pipeline (as the collector)
        await self._push(self._consume, type(self).wrap(msg, raw, n, info), n, info.transport)


class TracesHandler(_Handler):
    signal = "traces"
    unit = "spans"
    message_type = ExportTraceServiceRequest
    decode_json = staticmethod(otlpjson.decode_traces)
    count = staticmethod(count_spans)
    wrap = staticmethod(
        lambda msg, raw, n, info: Traces(raw=raw, message=msg, span_count=n, info=info)
    )

    def __init__(self, consumer: Any, receiver_id: str, meter: Meter, logger: logging.Logger):
        super().__init__(receiver_id, meter, logger)
        self._consume = consumer.consume_traces


class MetricsHandler(_Handler):
    signal = "metrics"
    unit = "metric_points"
    message_type = ExportMetricsServiceRequest
    decode_json = staticmethod(otlpjson.decode_metrics)
    count = staticmethod(count_data_points)
    wrap = staticmethod(
        lambda msg, raw, n, info: Metrics(raw=raw, message=msg, data_point_count=n, info=info)
    )

    def __init__(self, consumer: Any, receiver_id: str, meter: Meter, logger: logging.Logger):
        super().__init__(receiver_id, meter, logger)
        self._consume = consumer.consume_metrics
