"""otlp_grpc: forwards the OTLP requests as received, over a grpc.aio channel.

The request bytes go out untouched (`data.serialized()` through an identity serializer on
a raw unary-unary call): no span is parsed or rebuilt, which is what makes forwarding cost
a copy instead of a re-encode. Gzip is grpc's own (C core) message compression.
"""

from __future__ import annotations

import grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from otel_goblock.exporters.otlp.config import Config, grpc_target
from otel_goblock.exporters.otlp.tls import grpc_credentials

from otel_goblock import __version__
from otel_goblock.component import Component, CreateSettings, Host
from otel_goblock.exporterhelper import ExporterHelper, TimeoutConfig, from_grpc
from otel_goblock.pdata import Metrics, Traces

TRACES_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
METRICS_METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


def _identity(b: bytes) -> bytes:
    return b


class OTLPGrpcExporter(Component):
    def __init__(self, settings: CreateSettings, config: Config) -> None:
        self._cfg = config
        self._log = settings.logger
        self._channel: grpc.aio.Channel | None = None
        self._metadata = tuple((k.lower(), v) for k, v in config.headers.items())
        self._helper = ExporterHelper(
            settings,
            queue=config.sending_queue,
            retry=config.retry_on_failure,
            timeout=TimeoutConfig(config.timeout),
            send_traces=self._send_traces,
            send_metrics=self._send_metrics,
        )
        self.helper = self._helper  # tests and the service read queue sizes through it

    async def start(self, host: Host) -> None:
        cfg = self._cfg
        target = grpc_target(cfg.endpoint)
        options: list[tuple[str, object]] = [
            ("grpc.primary_user_agent", f"otel-goblock/{__version__}"),
            ("grpc.max_send_message_length", -1),
        ]
        if cfg.tls.server_name_override:
            options.append(("grpc.ssl_target_name_override", cfg.tls.server_name_override))
        compression = grpc.Compression.Gzip if cfg.compression == "gzip" else None
        if cfg.insecure:
            self._channel = grpc.aio.insecure_channel(target, options, compression)
        else:
            creds = grpc_credentials(cfg.tls)
            self._channel = grpc.aio.secure_channel(target, creds, options, compression)
        self._export_traces = self._channel.unary_unary(
            TRACES_METHOD,
            request_serializer=_identity,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        self._export_metrics = self._channel.unary_unary(
            METRICS_METHOD,
            request_serializer=_identity,
            response_deserializer=ExportMetricsServiceResponse.FromString,
        )
        await self._helper.start()

    async def shutdown(self) -> None:
        try:
            await self._helper.shutdown()
        finally:
            if self._channel is not None:
                channel, self._channel = self._channel, None
                await channel.close()

    async def consume_traces(self, data: Traces) -> None:
        await self._helper.consume_traces(data)

    async def consume_metrics(self, data: Metrics) -> None:
        await self._helper.consume_metrics(data)

    async def _send_traces(self, data: Traces, timeout_s: float) -> int:
        try:
            resp = await self._export_traces(
                data.serialized(), timeout=timeout_s, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as e:
            raise from_grpc(e) from None
        ps = resp.partial_success
        if ps.rejected_spans or ps.error_message:
            self._log.warning(
                "partial success: %d spans rejected: %s", ps.rejected_spans, ps.error_message
            )
        return ps.rejected_spans

    async def _send_metrics(self, data: Metrics, timeout_s: float) -> int:
        try:
            resp = await self._export_metrics(
                data.serialized(), timeout=timeout_s, metadata=self._metadata
            )
        except grpc.aio.AioRpcError as e:
            raise from_grpc(e) from None
        ps = resp.partial_success
        if ps.rejected_data_points or ps.error_message:
            self._log.warning(
                "partial success: %d data points rejected: %s",
                ps.rejected_data_points,
                ps.error_message,
            )
        return ps.rejected_data_points
