"""otlp_grpc: forwards the OTLP requests as received, over a grpc.aio channel.

The request bytes go out untouched (`data.serialized()` through an identity serializer on
a raw unary-unary call): no span is parsed or rebuilt, which is what makes forwarding cost
a copy instead of a re-encode. Gzip is grpc's own (C core) message compression.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from otel_goblock.exporters.otlp.auth import HeaderSource, client_auth
from otel_goblock.exporters.otlp.config import Config, grpc_target
from otel_goblock.exporters.otlp.tls import fetch_pinned, grpc_credentials

from otel_goblock import __version__
from otel_goblock.component import Component, CreateSettings, Host
from otel_goblock.exporterhelper import ExporterHelper, TimeoutConfig, from_grpc
from otel_goblock.pdata import Metrics, Traces

TRACES_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
METRICS_METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"


# with insecure_skip_verify, these failures make the next attempt read the certificate
# again (the server may have restarted with a new one)
_REPIN_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def _identity(b: bytes) -> bytes:
    return b


class OTLPGrpcExporter(Component):
    def __init__(self, settings: CreateSettings, config: Config) -> None:
        self._cfg = config
        self._id = settings.id
        self._log = settings.logger
        self._auth: HeaderSource | None = None  # set at start from `auth.authenticator`
        self._channel: grpc.aio.Channel | None = None
        self._pin_lock = asyncio.Lock()
        self._pinning = config.tls.insecure_skip_verify and not config.insecure
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
        self._auth = client_auth(self._id, cfg.auth, host)
        if self._auth is not None:  # the authenticator's header replaces a static one
            names = {k.lower() for k in self._auth()}
            self._metadata = tuple((k, v) for k, v in self._metadata if k not in names)
        if cfg.insecure:
            self._open(None, [])
        elif not self._pinning:
            self._open(grpc_credentials(cfg.tls), [])
        # insecure_skip_verify: the channel is built on first use, once the server's
        # certificate could be read (the server may not be up yet)
        await self._helper.start()

    def _open(self, creds: grpc.ChannelCredentials | None, extra: list[tuple[str, object]]) -> None:
        cfg = self._cfg
        target = grpc_target(cfg.endpoint)
        options: list[tuple[str, object]] = [
            ("grpc.primary_user_agent", f"otel-goblock/{__version__}"),
            ("grpc.max_send_message_length", -1),
            *extra,
        ]
        if cfg.tls.server_name_override:
            options.append(("grpc.ssl_target_name_override", cfg.tls.server_name_override))
        compression = grpc.Compression.Gzip if cfg.compression == "gzip" else None
        if creds is None:
            self._channel = grpc.aio.insecure_channel(target, options, compression)
        else:
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

    async def _ready(self) -> None:
        """insecure_skip_verify: pin the certificate the server presents now."""
        if self._channel is not None or not self._pinning:
            return
        async with self._pin_lock:
            if self._channel is not None:
                return
            target = grpc_target(self._cfg.endpoint).removeprefix("dns:///")
            host, _, port = target.rpartition(":")
            tls = self._cfg.tls
            pem, name = await asyncio.to_thread(
                fetch_pinned, host.strip("[]"), int(port), tls, float(self._cfg.timeout)
            )
            creds = grpc.ssl_channel_credentials(
                root_certificates=pem,
                private_key=Path(tls.key_file).read_bytes() if tls.key_file else None,
                certificate_chain=Path(tls.cert_file).read_bytes() if tls.cert_file else None,
            )
            extra: list[tuple[str, object]] = []
            if not tls.server_name_override:
                extra.append(("grpc.ssl_target_name_override", name))
            self._open(creds, extra)
            self._log.warning(
                "tls.insecure_skip_verify: trusting the certificate %s presented (name %r) "
                "without verification",
                target,
                name,
            )

    def _call_metadata(self) -> tuple[tuple[str, str], ...]:
        if self._auth is None:
            return self._metadata
        return self._metadata + tuple((k.lower(), v) for k, v in self._auth().items())

    async def _unpin(self) -> None:
        """The pinned server went away: read its certificate again on the next attempt."""
        if self._pinning and self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close(grace=1.0)

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
        ps = await self._send("_export_traces", data.serialized(), timeout_s)
        return self._rejected(ps.rejected_spans, "spans", ps.error_message)

    async def _send_metrics(self, data: Metrics, timeout_s: float) -> int:
        ps = await self._send("_export_metrics", data.serialized(), timeout_s)
        return self._rejected(ps.rejected_data_points, "data points", ps.error_message)

    async def _send(self, method: str, body: bytes, timeout_s: float) -> Any:
        """One Export call; its response's partial_success.  `method` is named, not
        passed: `_ready()` (re)creates the channel and its calls."""
        await self._ready()
        try:
            resp = await getattr(self, method)(
                body, timeout=timeout_s, metadata=self._call_metadata()
            )
        except grpc.aio.AioRpcError as e:
            if e.code() in _REPIN_CODES:
                await self._unpin()
            raise from_grpc(e) from None
        return resp.partial_success

    def _rejected(self, n: int, what: str, message: str) -> int:
        if n or message:
            self._log.warning("partial success: %d %s rejected: %s", n, what, message)
        return n
