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
from otel_goblock.processors.goblock.encode import field_bounds, read_varint

PID_ATTR = "process.pid"


def resource_spans_ranges(raw: bytes) -> list[tuple[int, int, bytes]]:
    """[(start, end, resource bytes)] of each top-level resource_spans field (start
    includes the tag, so raw[start:end] pieces concatenate into a valid request)."""
    out = []
    pos, n = 0, len(raw)
    while pos < n:
        field_start = pos
        tag, pos = read_varint(raw, pos)
        payload, end = field_bounds(raw, pos, tag & 7)
        if end > n:
            raise ValueError("truncated request")
        if tag == 0x0A:  # field 1, length-delimited: ResourceSpans
            resource = b""
            p = payload
            while p < end:
                t, p = read_varint(raw, p)
                inner, e = field_bounds(raw, p, t & 7)
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
