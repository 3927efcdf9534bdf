"""The `otlp` receiver component: owns the gRPC and HTTP servers (collector `otlp.go`).

One instance serves every pipeline that names it (the service builds one receiver per id
with a `Consumers` of the signals those pipelines carry); a signal with no consumer is not
served at all (gRPC UNIMPLEMENTED, HTTP 404), as in the collector.
"""

from __future__ import annotations

from typing import Any

from otel_goblock.receivers.otlp.config import Config
from otel_goblock.receivers.otlp.grpc import GRPCServer
from otel_goblock.receivers.otlp.handlers import MetricsHandler, TracesHandler
from otel_goblock.receivers.otlp.http import HTTPServer

from otel_goblock.component import Component, Consumers, CreateSettings, Host


def _authenticator(ext_id: str, host: Host | None) -> Any:
    """The extension named by `auth.authenticator` (None without auth); fails the start
    when it is not running or cannot authenticate requests."""
    if not ext_id:
        return None
    ext = host.get_extension(ext_id) if host is not None else None
    if ext is None:
        raise RuntimeError(
            f"otlp: auth.authenticator: extension {ext_id!r} is not configured "
            "(add it under extensions: and to service.extensions)"
        )
    if not callable(getattr(ext, "authenticate", None)):
        raise RuntimeError(
            f"otlp: auth.authenticator: extension {ext_id!r} cannot authenticate requests"
        )
    return ext


class OTLPReceiver(Component):
    def __init__(self, settings: CreateSettings, config: Config, next_: Consumers) -> None:
        rid = str(settings.id)
        log = settings.logger
        traces = (
            TracesHandler(next_.traces, rid, settings.meter, log)
            if next_ is not None and next_.traces is not None
            else None
        )
        metrics = (
            MetricsHandler(next_.metrics, rid, settings.meter, log)
            if next_ is not None and next_.metrics is not None
            else None
        )
        protocols = config.protocols
        self.grpc = (
            GRPCServer(protocols.grpc, traces, metrics, log) if protocols.grpc is not None else None
        )
        self.http = (
            HTTPServer(protocols.http, traces, metrics, log) if protocols.http is not None else None
        )

    @property
    def grpc_address(self) -> str:
        """host:port the gRPC server listens on ("" when gRPC is off or not started)."""
        return self.grpc.address if self.grpc is not None else ""

    @property
    def http_address(self) -> str:
        return self.http.address if self.http is not None else ""

    async def start(self, host: Host | None = None) -> None:
        for server in (self.grpc, self.http):
            if server is not None:
                server.authenticator = _authenticator(server.auth_id, host)
        if self.grpc is not None:
            await self.grpc.start()
        if self.http is not None:
            try:
                await self.http.start()
            except BaseException:
                if self.grpc is not None:
                    await self.grpc.stop(0)
                raise

    async def shutdown(self) -> None:
        """Stop accepting on both servers; in-flight exports finish (bounded by a grace)."""
        if self.http is not None:
            await self.http.stop()
        if self.grpc is not None:
            await self.grpc.stop()
