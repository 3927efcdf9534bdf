"""batch and memory_limiter on real OTLP protobuf requests."""

from __future__ import annotations

import asyncio
import logging
import os

import psutil
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from otel_goblock.processors.batch.batch import BatchProcessor
from otel_goblock.processors.batch.config import Config as BatchConfig
from otel_goblock.processors.memory_limiter.config import Config as MLConfig
from otel_goblock.processors.memory_limiter.memory_limiter import MemoryLimiter

from otel_goblock.component import ComponentID, CreateSettings
from otel_goblock.config import decode
from otel_goblock.consumer import RetryableError
from otel_goblock.pdata import Event, Traces, count_spans
from otel_goblock.telemetry import Telemetry


class Sink:
    """The end of a pipeline: records what reached it (a real consumer, not a stand-in)."""

    def __init__(self) -> None:
        self.got: list[Traces] = []

    async def consume_traces(self, data: Traces) -> None:
        self.got.append(data)


def request(n_spans: int, service: str = "svc", seed: int = 0) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(
        KeyValue(key="service.name", value=AnyValue(string_value=service))
    )
    ss = rs.scope_spans.add()
    for i in range(n_spans):
        s = ss.spans.add()
        s.trace_id = (seed * 1000 + i + 1).to_bytes(16, "big")
        s.span_id = (seed * 1000 + i + 1).to_bytes(8, "big")
        s.name = f"op{i}"
        s.start_time_unix_nano = 1_000 + i
        s.end_time_unix_nano = 2_000 + i
    return req


def settings(tel: Telemetry, type_: str) -> CreateSettings:
    return CreateSettings(
        id=ComponentID(type_),
        kind="processor",
        logger=logging.getLogger(type_),
        meter=tel.meter(type_),
        signals=frozenset({"traces"}),
    )


def span_ids(traces: list[Traces]) -> list[bytes]:
    return [
        s.span_id
        for t in traces
        for rs in t.message().resource_spans
        for ss in rs.scope_spans
        for s in ss.spans
    ]


async def test_batch_joins_requests_without_losing_or_changing_spans() -> None:
    tel, sink = Telemetry(), Sink()
    bp = BatchProcessor(
        settings(tel, "batch"),
        decode(BatchConfig, {"send_batch_size": 10, "timeout": "50ms"}),
        sink,
    )
    await bp.start(None)  # type: ignore[arg-type]
    sent = [request(3, seed=k) for k in range(7)]  # 21 spans
    for r in sent:
        await bp.consume_traces(Traces(raw=r.SerializeToString()))
    await asyncio.sleep(0.2)  # the timeout flushes the tail
    await bp.shutdown()
    assert [t.span_count for t in sink.got] == [12, 9]
    assert all(count_spans(t.message()) == t.span_count for t in sink.got)
    want = [s.span_id for r in sent for s in r.resource_spans[0].scope_spans[0].spans]
    assert span_ids(sink.got) == want
    # resource and scope of every request are kept (concatenation merges repeated fields)
    assert len(sink.got[0].message().resource_spans) == 4


async def test_batch_splits_oversized_requests_and_keeps_events() -> None:
    tel, sink = Telemetry(), Sink()
    cfg = decode(BatchConfig, {"send_batch_size": 4, "send_batch_max_size": 5, "timeout": "1s"})
    bp = BatchProcessor(settings(tel, "batch"), cfg, sink)
    await bp.start(None)  # type: ignore[arg-type]
    ev = Event(kind="syscall", pid=1, tid=1, goid=0, start_ns=1, end_ns=2)
    await bp.consume_traces(Traces(message=request(12), events=[ev]))
    await bp.shutdown()
    assert all(t.span_count <= 5 for t in sink.got)
    assert sum(t.span_count for t in sink.got) == 12
    assert [e for t in sink.got for e in t.events] == [ev]


async def test_batch_flushes_everything_on_shutdown() -> None:
    tel, sink = Telemetry(), Sink()
    bp = BatchProcessor(settings(tel, "batch"), decode(BatchConfig, {"timeout": "1h"}), sink)
    await bp.start(None)  # type: ignore[arg-type]
    await bp.consume_traces(Traces(message=request(5)))
    assert sink.got == []
    await bp.shutdown()
    assert sum(t.span_count for t in sink.got) == 5


async def test_memory_limiter_refuses_with_a_retryable_error_above_the_soft_limit() -> None:
    tel, sink = Telemetry(), Sink()
    rss_mib = psutil.Process(os.getpid()).memory_info().rss // (1024 * 1024)
    low = decode(
        MLConfig,
        {"check_interval": "10ms", "limit_mib": max(2, rss_mib // 2), "spike_limit_mib": 1},
    )
    ml = MemoryLimiter(settings(tel, "memory_limiter"), low, sink)
    await ml.start(None)  # type: ignore[arg-type]
    with pytest.raises(RetryableError) as e:
        await ml.consume_traces(Traces(message=request(3)))
    assert e.value.retry_after_s == pytest.approx(0.01)
    assert sink.got == []
    assert tel.total("otelcol_processor_refused_spans") == 3
    await ml.shutdown()

    high = decode(MLConfig, {"check_interval": "10ms", "limit_mib": rss_mib * 4 + 100})
    ml = MemoryLimiter(settings(tel, "memory_limiter"), high, sink)
    await ml.start(None)  # type: ignore[arg-type]
    await ml.consume_traces(Traces(message=request(3)))
    await ml.shutdown()
    assert sum(t.span_count for t in sink.got) == 3
