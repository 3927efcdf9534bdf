"""Errors raised by the Go execution trace parser.

Every failure to read a trace surfaces as `TraceParseError` (or its subclass
`UnsupportedTraceVersion`), so a caller that reads untrusted bytes — an HTTP
endpoint, a directory of flight-recorder dumps — needs exactly one except clause
and never sees an IndexError from a truncated batch.
"""

from __future__ import annotations


class TraceParseError(Exception):
    """The bytes are not a valid Go execution trace (truncated, corrupt, unknown layout).

    `offset` is the byte offset in the stream where the problem was detected, when known.
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (at byte {offset})")


class UnsupportedTraceVersion(TraceParseError):
    """The trace header names a Go version whose wire format this parser does not read."""

    def __init__(self, version: str, supported: tuple[str, ...]) -> None:
        self.version = version
        self.supported = supported
        super().__init__(
            f"unsupported Go execution trace version {version}: this parser reads the "
            f"generation-based format of {', '.join(supported)} (written by Go 1.22 and later, "
            "including Go 1.27 which writes the 1.26 format); traces of Go 1.21 and older use "
            "the pre-1.22 format and need `go tool trace` of that era"
        )
