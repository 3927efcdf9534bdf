"""Which parts of a request belong to observed processes, without parsing spans.

A serialized ExportTraceServiceRequest is a run of `resource_spans` fields (field 1);
each holds a `resource` (field 1) and the scope spans. Scanning the wire format finds
each ResourceSpans' byte range and its Resource, so only the small Resource is parsed
to read `process.pid`; unobserved ranges are forwarded as the very bytes received, and
only observed ones are parsed into a private copy the processor may edit.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

PID_ATTR = "process.pid"


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _skip(buf: bytes, pos: int, wire_type: int) -> tuple[int, int]:
    """(payload start, field end) of a field whose tag was read up to `pos`."""
    if wire_type == 2:
        n, pos = _varint(buf, pos)
        return pos, pos + n
    if wire_type == 0:
        _, end = _varint(buf, pos)
        return pos, end
    if wire_type == 1:
        return pos, pos + 8
    if wire_type == 5:
        return pos, pos + 4
    raise ValueError(f"unsupported wire type {wire_type}")


def resource_spans_ranges(raw: bytes) -> list[tuple[int, int, bytes]]:
    """[(start, end, resource bytes)] of each top-level resource_spans field (start
    includes the tag, so raw[start:end] pieces concatenate into a valid request)."""
    out = []
    pos, n = 0, len(raw)
    while pos < n:
        field_start = pos
        tag, pos = _varint(raw, pos)
        payload, end = _skip(raw, pos, tag & 7)
        if end > n:
            raise ValueError("truncated request")
        if tag == 0x0A:  # field 1, length-delimited: ResourceSpans
            resource = b""
            p = payload
            while p < end:
                t, p = _varint(raw, p)
                inner, e = _skip(raw, p, t & 7)
                if t == 0x0A:
                    resource = raw[inner:e]
                    break
                p = e
            out.append((field_start, end, resource))
        pos = end
    return out


def pid_of_resource(resource: Resource) -> int | None:
    for kv in resource.attributes:
        if kv.key == PID_ATTR:
            v = kv.value
            if v.HasField("int_value"):
                return v.int_value
            try:
                return int(v.string_value)
            except ValueError:
                return None
    return None


class PidCache:
    """Resource bytes → process.pid: an SDK sends the same resource in every request."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._cache: dict[bytes, int | None] = {}
        self._max = max_entries

    def pid(self, resource_bytes: bytes) -> int | None:
        try:
            return self._cache[resource_bytes]
        except KeyError:
            try:
                pid = pid_of_resource(Resource.FromString(resource_bytes))
            except DecodeError:
                pid = None  # the request's parse will say what is wrong, if anything
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[resource_bytes] = pid
            return pid
