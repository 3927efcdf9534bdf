"""The one place where what went wrong becomes a gRPC status or an HTTP response.

Both transports raise or catch the same exceptions; this module decides the code, the
`google.rpc.Status` (with `RetryInfo` for retryable errors) and the HTTP headers, so the
two transports can never disagree (collector `internal/errors`). The rules (OTLP spec,
DESIGN §7):

| what                                  | gRPC                 | HTTP                    |
|---------------------------------------|----------------------|-------------------------|
| malformed protobuf / JSON / gzip      | INVALID_ARGUMENT     | 400                     |
| too large (after decompression)       | RESOURCE_EXHAUSTED   | 413                     |
| consumer RetryableError (or a bug)    | UNAVAILABLE+RetryInfo| 503 + Retry-After       |
| consumer PermanentError               | INVALID_ARGUMENT     | 400                     |
| wrong content type / method           | (n/a)                | 415 / 405               |

Any other exception from a consumer counts as retryable, as in the collector: only a
consumer that says "permanent" may make the client drop data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, error_details_pb2, status_pb2

from otel_goblock.consumer import PermanentError, RetryableError


class ReceiverError(Exception):
    """An input problem found by the receiver itself."""


class MalformedError(ReceiverError):
    """The body cannot be decoded (protobuf, JSON, compression)."""


class TooLargeError(ReceiverError):
    """The body exceeds the size limit, as sent or after decompression."""


class UnsupportedMediaTypeError(ReceiverError):
    """HTTP Content-Type is neither application/x-protobuf nor application/json."""


class MethodNotAllowedError(ReceiverError):
    """HTTP method other than POST."""


@dataclass(slots=True)
class Mapped:
    """How one error is answered on each transport."""

    grpc_code: grpc.StatusCode
    http_status: int
    status: status_pb2.Status  # google.rpc.Status, the body / grpc-status-details-bin
    headers: dict[str, str] = field(default_factory=dict)
    retryable: bool = False


_DEFAULT_RETRY_S = 1.0


def map_error(err: BaseException) -> Mapped:
    """Classify `err` (an input problem or what a consumer raised)."""
    msg = str(err) or type(err).__name__
    if isinstance(err, TooLargeError):
        return _mapped(grpc.StatusCode.RESOURCE_EXHAUSTED, 413, code_pb2.RESOURCE_EXHAUSTED, msg)
    if isinstance(err, UnsupportedMediaTypeError):
        return _mapped(grpc.StatusCode.INVALID_ARGUMENT, 415, code_pb2.INVALID_ARGUMENT, msg)
    if isinstance(err, MethodNotAllowedError):
        m = _mapped(grpc.StatusCode.UNIMPLEMENTED, 405, code_pb2.UNIMPLEMENTED, msg)
        m.headers["Allow"] = "POST"
        return m
    if isinstance(err, MalformedError | PermanentError):
        return _mapped(grpc.StatusCode.INVALID_ARGUMENT, 400, code_pb2.INVALID_ARGUMENT, msg)
    retry_s = err.retry_after_s if isinstance(err, RetryableError) else _DEFAULT_RETRY_S
    retry_s = max(0.0, float(retry_s))
    m = _mapped(grpc.StatusCode.UNAVAILABLE, 503, code_pb2.UNAVAILABLE, msg)
    seconds = int(retry_s)
    info = error_details_pb2.RetryInfo(
        retry_delay=Duration(seconds=seconds, nanos=int((retry_s - seconds) * 1e9))
    )
    m.status.details.add().Pack(info)
    # Retry-After is whole seconds (RFC 9110); never 0, which would invite a busy loop
    m.headers["Retry-After"] = str(max(1, math.ceil(retry_s)))
    m.retryable = True
    return m


def _mapped(grpc_code: grpc.StatusCode, http: int, rpc_code: int, msg: str) -> Mapped:
    return Mapped(grpc_code, http, status_pb2.Status(code=rpc_code, message=msg))


def grpc_trailers(m: Mapped) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata for an error.

    `grpc-status-details-bin` carries the whole google.rpc.Status with its RetryInfo (what
    grpc-go clients and the collector's exporters read). The OTel Python SDK's exporter
    reads only a `google.rpc.retryinfo-bin` trailer holding the RetryInfo itself, so a
    retryable error carries that too: every client then waits as long as we ask.
    """
    if not m.status.details:
        return ()
    trailers = [("grpc-status-details-bin", m.status.SerializeToString())]
    for any_ in m.status.details:
        if any_.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            trailers.append(("google.rpc.retryinfo-bin", any_.value))
    return tuple(trailers)
