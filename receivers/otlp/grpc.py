"""OTLP over gRPC: TraceService/Export and MetricsService/Export on a grpc.aio server.

The services are registered with generic handlers whose request deserializer is the
identity, so the handler receives the request bytes exactly as sent: they are parsed once
(by the signal handler, to validate and count) and kept, so an exporter can forward them
without serializing again. grpc itself enforces `max_recv_msg_size_mib` (after
decompression) and answers RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

import grpc
from otel_goblock.receivers.otlp.config import MIB, GRPCConfig
from otel_goblock.receivers.otlp.errors import grpc_trailers, map_error
from otel_goblock.receivers.otlp.handlers import MetricsHandler, TracesHandler
from otel_goblock.receivers.otlp.tls import grpc_credentials

from otel_goblock.pdata import RequestInfo

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
METRICS_SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
_EMPTY_RESPONSE = b""  # Export*ServiceResponse with no partial_success serializes to nothing


def peer_address(peer: str) -> str:
    """grpc's "ipv4:1.2.3.4:5" / "ipv6:%5B::1%5D:5" → "1.2.3.4:5" / "[::1]:5"."""
    scheme, sep, rest = peer.partition(":")
    if not sep or scheme not in ("ipv4", "ipv6"):
        return peer
    return unquote(rest)


def server_options(cfg: GRPCConfig) -> list[tuple[str, int]]:
    """gRPC core channel arguments for the config (grpc-go's names mapped to C-core's)."""
    options = [
        ("grpc.max_receive_message_length", cfg.max_recv_msg_size_mib * MIB),
        # without this two servers may silently share a port (SO_REUSEPORT)
        ("grpc.so_reuseport", 0),
    ]
    if cfg.max_concurrent_streams:
        options.append(("grpc.max_concurrent_streams", cfg.max_concurrent_streams))
    ka = cfg.keepalive
    params = ka.server_parameters if ka is not None else None
    if params is not None:
        for arg, value in (
            ("grpc.max_connection_idle_ms", params.max_connection_idle),
            ("grpc.max_connection_age_ms", params.max_connection_age),
            ("grpc.max_connection_age_grace_ms", params.max_connection_age_grace),
            ("grpc.keepalive_time_ms", params.time),
            ("grpc.keepalive_timeout_ms", params.timeout),
        ):
            if value is not None:
                options.append((arg, round(value * 1000)))
    policy = ka.enforcement_policy if ka is not None else None
    if policy is not None:
        if policy.min_time is not None:
            # GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS (server side)
            ms = round(policy.min_time * 1000)
            options.append(("grpc.http2.min_ping_interval_without_data_ms", ms))
        options.append(("grpc.keepalive_permit_without_calls", int(policy.permit_without_stream)))
    return options


class GRPCServer:
    def __init__(
        self,
        cfg: GRPCConfig,
        traces: TracesHandler | None,
        metrics: MetricsHandler | None,
        logger: logging.Logger,
    ) -> None:
        self._cfg = cfg
        self._traces = traces
        self._metrics = metrics
        self._logger = logger
        self._server: grpc.aio.Server | None = None
        self.address = ""  # host:port actually bound (the port is known after start)
        # set by the receiver at start from `auth.authenticator` (None: no auth)
        self.auth_id = cfg.auth.authenticator if cfg.auth is not None else ""
        self.authenticator: Any = None

    async def start(self) -> None:
        cfg = self._cfg
        server = grpc.aio.server(options=server_options(cfg))
        handlers = []
        if self._traces is not None:
            handlers.append(self._service(TRACE_SERVICE, self._traces))
        if self._metrics is not None:
            handlers.append(self._service(METRICS_SERVICE, self._metrics))
        server.add_generic_rpc_handlers(handlers)
        try:
            if cfg.tls is not None and cfg.tls.cert_file:
                port = server.add_secure_port(cfg.endpoint, grpc_credentials(cfg.tls))
            else:
                port = server.add_insecure_port(cfg.endpoint)
        except RuntimeError as e:
            raise RuntimeError(f"otlp grpc: cannot listen on {cfg.endpoint}: {e}") from e
        if not port:
            raise RuntimeError(f"otlp grpc: cannot listen on {cfg.endpoint} (address in use?)")
        await server.start()
        self._server = server
        self.address = f"{cfg.endpoint.rpartition(':')[0]}:{port}"
        self._logger.info("otlp grpc receiver listening on %s", self.address)

    def _service(
        self, name: str, handler: TracesHandler | MetricsHandler
    ) -> grpc.GenericRpcHandler:
        include_metadata = self._cfg.include_metadata

        async def export(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
            auth = self.authenticator
            if auth is not None and not auth.authenticate(context.invocation_metadata() or ()):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid token")
            info = RequestInfo(transport="grpc", peer=peer_address(context.peer()))
            if include_metadata:
                info.headers = {
                    k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)
                }
            try:
                await handler.export_protobuf(request, info)
            except Exception as e:
                m = map_error(e)
                await context.abort(m.grpc_code, m.status.message, grpc_trailers(m))
            return _EMPTY_RESPONSE

        method = grpc.unary_unary_rpc_method_handler(
            export, request_deserializer=None, response_serializer=None
        )
        return grpc.method_handlers_generic_handler(name, {"Export": method})

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop accepting; let in-flight exports finish for up to `grace_s`."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace_s)
