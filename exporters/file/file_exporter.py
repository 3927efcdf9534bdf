"""file: one OTLP export request per record, for demos and debugging.

`json`: one OTLP/JSON `ExportTraceServiceRequest` / `ExportMetricsServiceRequest` per line
(ids hex, enums as integers, int64 as strings: the OTLP/JSON rules, via the receiver's
codec so the two never disagree). `proto`: each serialized request prefixed by its length
as a 4-byte big-endian integer, as the collector's fileexporter writes it — the bytes as
received, never re-encoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

from otel_goblock.exporters.file.config import Config
from otel_goblock.exporters.file.rotating import RotatingFile
from otel_goblock.receivers.otlp.otlpjson import encode_metrics, encode_traces

from otel_goblock.component import Component, CreateSettings, Host
from otel_goblock.pdata import Metrics, Traces


class FileExporter(Component):
    def __init__(self, settings: CreateSettings, config: Config) -> None:
        self._cfg = config
        self._log = settings.logger
        self._file: RotatingFile | None = None
        self._flusher: asyncio.Task[None] | None = None
        attrs = {"exporter": str(settings.id)}
        self._attrs = attrs
        self._sent_spans = settings.meter.create_counter("otelcol_exporter_sent_spans")
        self._sent_points = settings.meter.create_counter("otelcol_exporter_sent_metric_points")

    async def start(self, host: Host) -> None:
        rot = self._cfg.rotation
        self._file = RotatingFile(self._cfg.path, rot.max_megabytes * 1024 * 1024, rot.max_backups)
        if self._cfg.flush_interval > 0:
            self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(float(self._cfg.flush_interval))
            if self._file is not None:
                self._file.flush()

    async def shutdown(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        if self._file is not None:
            self._file.flush()
            self._file.close()
            self._file = None

    def _write(self, record: bytes) -> None:
        if self._file is None:
            raise RuntimeError("file exporter is not started")
        self._file.write(record)
        if not self._cfg.flush_interval:
            self._file.flush()

    async def consume_traces(self, data: Traces) -> None:
        if not data.span_count:
            return
        if self._cfg.format == "json":
            self._write(encode_traces(data.message()) + b"\n")
        else:
            raw = data.serialized()
            self._write(struct.pack(">I", len(raw)) + raw)
        self._sent_spans.add(data.span_count, self._attrs)

    async def consume_metrics(self, data: Metrics) -> None:
        if not data.data_point_count:
            return
        if self._cfg.format == "json":
            self._write(encode_metrics(data.message()) + b"\n")
        else:
            raw = data.serialized()
            self._write(struct.pack(">I", len(raw)) + raw)
        self._sent_points.add(data.data_point_count, self._attrs)
