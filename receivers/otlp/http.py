"""OTLP over HTTP: POST /v1/traces and /v1/metrics, protobuf or JSON, optionally gzip.

aiohttp's low-level server is used without a router: two paths need no routing table, and
the handler runs for every request, so 404/405/415 are answered here, in one place.

The body is read as a stream and capped at `max_request_body_size` both as sent and after
decompression; decompression stops as soon as the output passes the cap, so a gzip bomb
costs at most `max_request_body_size` of memory before the 413.
"""

from __future__ import annotations

import logging
import zlib
from typing import Any

from aiohttp import web
from google.protobuf import json_format
from google.rpc import status_pb2
from otel_goblock.receivers.otlp.config import HTTPConfig
from otel_goblock.receivers.otlp.errors import (
    MalformedError,
    Mapped,
    MethodNotAllowedError,
    TooLargeError,
    UnsupportedMediaTypeError,
    map_error,
)
from otel_goblock.receivers.otlp.handlers import MetricsHandler, TracesHandler
from otel_goblock.receivers.otlp.tls import ssl_context

from otel_goblock.pdata import RequestInfo

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_CHUNK = 64 * 1024
# wbits for zlib.decompressobj: gzip framing, zlib framing ("deflate" in HTTP is zlib)
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
_OK = {PROTOBUF: b"", JSON: b"{}"}  # Export*ServiceResponse without partial_success


class HTTPServer:
    def __init__(
        self,
        cfg: HTTPConfig,
        traces: TracesHandler | None,
        metrics: MetricsHandler | None,
        logger: logging.Logger,
    ) -> None:
        self._cfg = cfg
        self._limit = int(cfg.max_request_body_size)
        self._routes: dict[str, TracesHandler | MetricsHandler] = {}
        if traces is not None:
            self._routes[cfg.traces_url_path] = traces
        if metrics is not None:
            self._routes[cfg.metrics_url_path] = metrics
        self._logger = logger
        self._runner: web.ServerRunner | None = None
        self.address = ""
        # set by the receiver at start from `auth.authenticator` (None: no auth)
        self.auth_id = cfg.auth.authenticator if cfg.auth is not None else ""
        self.authenticator: Any = None

    async def start(self) -> None:
        cfg = self._cfg
        ssl_ctx = ssl_context(cfg.tls) if cfg.tls is not None and cfg.tls.cert_file else None
        # aiohttp would inflate gzip itself, without our size cap: keep the raw stream
        server = web.Server(self._handle, auto_decompress=False)
        runner = web.ServerRunner(server, shutdown_timeout=5.0)
        await runner.setup()
        host, _, port = cfg.endpoint.rpartition(":")
        site = web.TCPSite(runner, host.strip("[]"), int(port), ssl_context=ssl_ctx)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            raise RuntimeError(f"otlp http: cannot listen on {cfg.endpoint}: {e}") from e
        self._runner = runner
        bound = runner.addresses[0][1] if runner.addresses else int(port)  # port 0: the real one
        self.address = f"{host}:{bound}"
        self._logger.info("otlp http receiver listening on %s", self.address)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # ------------------------------------------------------------------ request path

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        # before anything else, as the collector's auth middleware: an unauthenticated
        # client learns nothing about paths, methods or limits
        auth = self.authenticator
        if auth is not None and not auth.authenticate(request.headers):
            return web.Response(
                status=401,
                text="401 unauthorized: missing or invalid token",
                content_type="text/plain",
                headers={"WWW-Authenticate": "Bearer"},
            )
        handler = self._routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="404 page not found", content_type="text/plain")
        if request.method != "POST":
            return _plain(
                map_error(MethodNotAllowedError("405 method not allowed, supported: [POST]"))
            )
        ctype = request.content_type
        if ctype not in _OK:
            err = UnsupportedMediaTypeError(
                f"415 unsupported media type, supported: [{JSON}, {PROTOBUF}]"
            )
            return _plain(map_error(err))
        info = RequestInfo(transport="http", peer=_peer(request))
        if self._cfg.include_metadata:
            info.headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body = await self._read_body(request)
            if ctype == PROTOBUF:
                await handler.export_protobuf(body, info)
            else:
                await handler.export_json(body, info)
        except Exception as e:
            m = map_error(e)
            if not m.retryable:
                self._logger.debug("otlp http: %s %s: %s", m.http_status, request.path, e)
            return _status_response(m.http_status, m.status, ctype, m.headers)
        return web.Response(status=200, body=_OK[ctype], content_type=ctype)

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        limit = self._limit
        length = request.content_length
        if length is not None and length > limit:
            raise TooLargeError(f"request body of {length} bytes exceeds the limit of {limit}")
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding in ("", "identity"):
            return await _read_capped(request, limit)
        wbits = _DECODERS.get(encoding)
        if wbits is None:
            raise MalformedError(
                f"unsupported Content-Encoding {encoding!r} (supported: gzip, deflate)"
            )
        return await _inflate_capped(request, limit, wbits)


async def _read_capped(request: web.BaseRequest, limit: int) -> bytes:
    chunks = []
    total = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        total += len(chunk)
        if total > limit:
            raise TooLargeError(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _inflate_capped(request: web.BaseRequest, limit: int, wbits: int) -> bytes:
    """Decompress as the body streams in, never producing more than `limit` + 1 bytes."""
    out: list[bytes] = []
    produced = received = 0
    decoder = zlib.decompressobj(wbits)
    pending = False  # input fed to the current member that has not reached its end
    try:
        async for chunk in request.content.iter_chunked(_CHUNK):
            received += len(chunk)
            if received > limit:
                raise TooLargeError(f"compressed request body exceeds the limit of {limit} bytes")
            data = chunk
            while data:
                piece = decoder.decompress(data, limit - produced + 1)
                pending = True
                produced += len(piece)
                if produced > limit:
                    raise TooLargeError(
                        f"decompressed request body exceeds the limit of {limit} bytes"
                    )
                out.append(piece)
                if decoder.eof:  # end of one gzip member; another may follow
                    data = decoder.unused_data
                    decoder = zlib.decompressobj(wbits)
                    pending = False
                else:
                    data = decoder.unconsumed_tail
    except zlib.error as e:
        raise MalformedError(
            f"invalid {'gzip' if wbits > zlib.MAX_WBITS else 'deflate'} body: {e}"
        ) from None
    if pending:
        raise MalformedError("truncated compressed body")
    return b"".join(out)


def _peer(request: web.BaseRequest) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    if not peer:
        return ""
    host, port = peer[0], peer[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _status_response(
    http_status: int, status: status_pb2.Status, ctype: str, headers: dict[str, str]
) -> web.Response:
    """A google.rpc.Status body in the request's own encoding (OTLP/HTTP spec)."""
    if ctype == JSON:
        body = json_format.MessageToJson(status, indent=None).encode()
    else:
        body = status.SerializeToString()
    return web.Response(status=http_status, body=body, content_type=ctype, headers=headers)


def _plain(m: Mapped) -> web.Response:
    """405/415 bodies are plain text, as the collector writes them."""
    return web.Response(
        status=m.http_status, text=m.status.message, content_type="text/plain", headers=m.headers
    )
