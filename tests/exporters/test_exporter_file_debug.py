"""file and debug exporters on real OTLP requests."""

from __future__ import annotations

import asyncio
import io
import struct

import orjson
import pytest
from exporter_sinks import NoHost, Telemetry, metrics, metrics_request, trace_request, traces
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otel_goblock.exporters.debug.config import Config as DebugConfig
from otel_goblock.exporters.debug.debug_exporter import DebugExporter, Sampler
from otel_goblock.exporters.debug.text import timestamp
from otel_goblock.exporters.file.config import Config as FileConfig
from otel_goblock.exporters.file.factory import FACTORY as FILE
from otel_goblock.receivers.otlp.otlpjson import decode_metrics, decode_traces

from otel_goblock.config import ConfigError, decode
from otel_goblock.pdata import Event, Metrics, Traces


async def file_exporter(tel: Telemetry, **cfg: object):  # type: ignore[no-untyped-def]
    exp = FILE.create(tel.settings("file"), decode(FileConfig, cfg), None)
    await exp.start(NoHost())
    return exp


async def test_json_lines_parse_back_to_the_same_requests(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "out" / "spans.jsonl"  # the directory is created, as lumberjack does
    tel = Telemetry()
    exp = await file_exporter(tel, path=str(path))
    treqs = [trace_request(20, seed=i) for i in range(3)]
    for r in treqs:
        await exp.consume_traces(Traces(message=r))
    mreq = metrics_request(5)
    await exp.consume_metrics(Metrics(message=mreq))
    # flushed per write: readable before shutdown
    lines = path.read_bytes().splitlines()
    assert len(lines) == 4
    await exp.shutdown()
    for line, r in zip(lines[:3], treqs, strict=True):
        assert decode_traces(line) == r
    assert decode_metrics(lines[3]) == mreq
    assert tel.value("otelcol_exporter_sent_spans", exporter="file") == 60
    assert tel.value("otelcol_exporter_sent_metric_points", exporter="file") == 5


async def test_json_follows_otlp_json_rules(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.jsonl"
    exp = await file_exporter(Telemetry(), path=str(path))
    req = trace_request(1)
    span = req.resource_spans[0].scope_spans[0].spans[0]
    await exp.consume_traces(Traces(message=req))
    await exp.shutdown()
    obj = orjson.loads(path.read_bytes())
    out = obj["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert out["traceId"] == span.trace_id.hex()
    assert out["spanId"] == span.span_id.hex()
    assert out["parentSpanId"] == span.parent_span_id.hex()
    assert out["kind"] == 2  # enums as integers
    assert out["startTimeUnixNano"] == str(span.start_time_unix_nano)  # int64 as strings


async def test_events_only_traces_write_nothing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.jsonl"
    exp = await file_exporter(Telemetry(), path=str(path))
    ev = Event(kind="park", pid=1, tid=1, goid=3, start_ns=1, end_ns=5)
    await exp.consume_traces(Traces(raw=b"", span_count=0, events=[ev]))
    await exp.shutdown()
    assert path.read_bytes() == b""


async def test_proto_format_is_length_prefixed_bytes_as_received(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.pb"
    exp = await file_exporter(Telemetry(), path=str(path), format="proto")
    t, m = traces(7), metrics(3)
    await exp.consume_traces(t)
    await exp.consume_metrics(m)
    await exp.shutdown()
    blob = path.read_bytes()
    records = []
    while blob:
        (n,) = struct.unpack(">I", blob[:4])
        records.append(blob[4 : 4 + n])
        blob = blob[4 + n :]
    assert records == [t.serialized(), m.serialized()]
    assert ExportTraceServiceRequest.FromString(records[0]).resource_spans
    assert ExportMetricsServiceRequest.FromString(records[1]).resource_metrics


async def test_rotation_by_size_keeps_max_backups(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "spans.jsonl"
    exp = await file_exporter(
        Telemetry(), path=str(path), rotation={"max_megabytes": 1, "max_backups": 2}
    )
    req = trace_request(400)  # ~150 KB of JSON per line
    written = 0
    for _ in range(30):
        await exp.consume_traces(Traces(message=req))
        written += 1
    await exp.shutdown()
    backups = sorted(tmp_path.glob("spans-*.jsonl"))
    assert len(backups) == 2
    for f in [*backups, path]:
        size = f.stat().st_size
        assert 0 < size <= 1024 * 1024
        for line in f.read_bytes().splitlines():  # never a line split across files
            assert decode_traces(line) == req
    lines = sum(len(f.read_bytes().splitlines()) for f in [*backups, path])
    assert lines < written  # older backups were removed


async def test_flush_interval(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "s.jsonl"
    exp = await file_exporter(Telemetry(), path=str(path), flush_interval="100ms")
    await exp.consume_traces(traces(1))
    await asyncio.sleep(0.3)
    assert len(path.read_bytes().splitlines()) == 1
    await exp.shutdown()


def test_file_config_errors() -> None:
    with pytest.raises(ConfigError) as e:
        decode(FileConfig, {"format": "xml", "rotation": {"max_backups": -1}}, "exporters.file")
    text = str(e.value)
    assert "exporters.file.format: expected one of 'json', 'proto', got 'xml'" in text
    with pytest.raises(ConfigError, match=r"exporters\.file\.path: expected a file path"):
        decode(FileConfig, {}, "exporters.file")


async def test_debug_basic_one_line_per_batch() -> None:
    out = io.StringIO()
    tel = Telemetry()
    exp = DebugExporter(tel.settings("debug"), DebugConfig(), stream=out)
    await exp.consume_traces(traces(12))
    await exp.consume_metrics(metrics(4))
    lines = out.getvalue().splitlines()
    assert lines == [
        'debug\tTraces\t{"resource spans": 1, "spans": 12}',
        'debug\tMetrics\t{"resource metrics": 1, "metrics": 1, "data points": 4}',
    ]
    assert tel.value("otelcol_exporter_sent_spans") == 12


async def test_debug_detailed_dumps_each_span() -> None:
    out = io.StringIO()
    exp = DebugExporter(
        Telemetry().settings("debug"), decode(DebugConfig, {"verbosity": "detailed"}), out
    )
    req = trace_request(2)
    span = req.resource_spans[0].scope_spans[0].spans[1]
    await exp.consume_traces(Traces(message=req))
    await exp.consume_metrics(metrics(2))
    text = out.getvalue()
    assert text.count("Span #") == 2
    assert f"    Trace ID       : {span.trace_id.hex()}" in text
    assert f"    ID             : {span.span_id.hex()}" in text
    assert f"    Parent ID      : {span.parent_span_id.hex()}" in text
    assert "    Name           : span-0-1" in text
    assert "    Kind           : Server" in text
    assert f"    Start time     : {timestamp(span.start_time_unix_nano)}" in text
    assert "     -> k1: Int(1)" in text
    assert "     -> service.name: Str(t)" in text
    assert "SpanEvent #0\n     -> Name: ev" in text
    assert "     -> DataType: Sum\n     -> IsMonotonic: true" in text
    assert "NumberDataPoints #1" in text and "Value: 1" in text


def test_timestamp_like_go() -> None:
    assert timestamp(1_581_452_772_000_000_321) == "2020-02-11 20:26:12.000000321 +0000 UTC"
    assert timestamp(1_581_452_772_000_000_000) == "2020-02-11 20:26:12 +0000 UTC"


def test_sampler() -> None:
    now = [0.0]
    s = Sampler(2, 3, clock=lambda: now[0])
    got = [s.allow() for _ in range(8)]
    assert got == [True, True, False, False, True, False, False, True]
    now[0] = 1.0  # a new second: the initial allowance again
    assert s.allow() and s.allow()


async def test_debug_detailed_histogram_and_gauge() -> None:
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    h = sm.metrics.add()
    h.name = "latency"
    h.unit = "ms"
    h.histogram.aggregation_temporality = 1
    p = h.histogram.data_points.add()
    p.count, p.sum, p.min, p.max = 3, 12.5, 1.0, 9.0
    p.explicit_bounds.extend([5.0, 10.0])
    p.bucket_counts.extend([2, 1, 0])
    g = sm.metrics.add()
    g.name = "temp"
    g.gauge.data_points.add().as_double = 21.5
    out = io.StringIO()
    exp = DebugExporter(
        Telemetry().settings("debug"), decode(DebugConfig, {"verbosity": "detailed"}), out
    )
    await exp.consume_metrics(Metrics(message=req))
    text = out.getvalue()
    assert "     -> DataType: Histogram\n     -> AggregationTemporality: Delta" in text
    assert "HistogramDataPoints #0" in text
    assert "Count: 3\nSum: 12.5\nMin: 1\nMax: 9" in text
    assert "ExplicitBounds #1: 10" in text and "Buckets #0, Count: 2" in text
    assert "     -> DataType: Gauge" in text and "Value: 21.5" in text
