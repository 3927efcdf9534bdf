"""What an export attempt's failure means: retry or give up, and how long to wait.

One place maps gRPC status codes and HTTP statuses to that decision, with the collector's
rules (otlpexporter `shouldRetry`, otlphttpexporter): any other exception an exporter lets
escape (a refused connection, a reset) counts as retryable, as in the collector where
only errors marked permanent stop the retries.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

import grpc
from google.rpc import error_details_pb2, status_pb2

RETRYABLE_GRPC = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
RETRYABLE_HTTP = frozenset({429, 502, 503, 504})


class ExportFailure(Exception):
    """An export attempt failed; `throttle_s` is the server's own wait (RetryInfo,
    Retry-After), used when longer than the backoff."""

    def __init__(self, message: str, *, retryable: bool, throttle_s: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.throttle_s = throttle_s


def grpc_retry_info(trailers: object) -> float | None:
    """The RetryInfo delay carried in `grpc-status-details-bin`, in seconds, if any."""
    for key, value in trailers or ():  # type: ignore[attr-defined]
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:  # a malformed detail is no RetryInfo
            return None
        for detail in status.details:
            if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                info = error_details_pb2.RetryInfo()
                detail.Unpack(info)
                return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


def from_grpc(err: grpc.aio.AioRpcError) -> ExportFailure:
    code = err.code()
    delay = grpc_retry_info(err.trailing_metadata())
    retryable = code in RETRYABLE_GRPC or (
        code == grpc.StatusCode.RESOURCE_EXHAUSTED and delay is not None
    )
    return ExportFailure(
        f"rpc error: code = {code.name} desc = {err.details()}",
        retryable=retryable,
        throttle_s=delay,
    )


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as delay-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is True too
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def http_status_message(body: bytes) -> str:
    """The message of a `google.rpc.Status` body, else the start of the body as text."""
    status = status_pb2.Status()
    try:
        status.ParseFromString(body)
        if status.message:
            return status.message
    except Exception:  # not a Status: show the text
        pass
    return body[:200].decode("utf-8", "replace")


def from_http(status: int, headers: Mapping[str, str], body: bytes) -> ExportFailure:
    delay = retry_after_s(headers.get("Retry-After"))
    msg = http_status_message(body)
    return ExportFailure(
        f"HTTP {status}: {msg}", retryable=status in RETRYABLE_HTTP, throttle_s=delay
    )
