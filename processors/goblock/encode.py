"""OTLP wire encoding of what the join adds: attributes and episode spans, as bytes.

Setting protobuf fields from Python costs about a microsecond each; an enriched span
gains ~10 attributes and ~2 episode children of ~6 fields each. Encoding the additions
directly (repeated fields may be appended to a message's serialization — protobuf
merges them) and merging them with one `MergeFromString` per span and one per scope is
several times cheaper, and leaves every original byte of the span as it was.
"""

from __future__ import annotations

import struct

_VARINT1 = [bytes([i]) for i in range(128)]
_pack_d = struct.Struct("<d").pack
_pack_q = struct.Struct("<Q").pack
# a span entry's fixed parts, each in one pack (an episode span per wait: the hot encoder)
_pack_ids = struct.Struct("<2s16s2s8s2s8s").pack  # trace, span and parent span ids
_pack_times = struct.Struct("<3sQ1sQ").pack  # kind INTERNAL, start, end (fixed64)
_key_cache: dict[str, bytes] = {}
_dbl_cache: dict[str, bytes] = {}


def varint(n: int) -> bytes:
    if 0 <= n < 128:
        return _VARINT1[n]
    if 0 < n < 2097152:  # two or three bytes (goroutine ids, lengths): no loop
        if n < 16384:
            return bytes((n & 0x7F | 0x80, n >> 7))
        return bytes((n & 0x7F | 0x80, (n >> 7) & 0x7F | 0x80, n >> 14))
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _key(key: str) -> bytes:
    kb = _key_cache.get(key)
    if kb is None:
        raw = key.encode("utf-8", "replace")
        kb = _key_cache[key] = b"\x0a" + varint(len(raw)) + raw
        if len(_key_cache) > 10_000:
            _key_cache.clear()
    return kb


def _entry(body: bytes, tag: bytes) -> bytes:
    return tag + varint(len(body)) + body


# Span.attributes is field 9 (tag 0x4a); Span.Event.attributes is field 3 (0x1a)
SPAN_ATTR = b"\x4a"
EVENT_ATTR = b"\x1a"


def attr_double(key: str, value: float) -> bytes:
    prefix = _dbl_cache.get(key)
    if prefix is None:
        kb = _key(key)
        prefix = _dbl_cache[key] = SPAN_ATTR + varint(len(kb) + 11) + kb + b"\x12\x09\x21"
    return prefix + _pack_d(value)


def attr_str(key: str, value: str, tag: bytes = SPAN_ATTR) -> bytes:
    # protobuf strings must be UTF-8: a path with undecodable bytes (surrogate escapes)
    # gets '?' (what str.encode's 'replace' writes) rather than failing the request
    vb = value.encode("utf-8", "replace")
    kb = _key_cache.get(key) or _key(key)
    n = len(vb)
    if n < 126 and len(kb) + n < 124:  # every length fits one byte (the common case)
        return b"".join(
            (tag, _VARINT1[len(kb) + n + 4], kb, b"\x12", _VARINT1[n + 2], b"\x0a", _VARINT1[n], vb)
        )
    av = b"\x0a" + varint(n) + vb
    return _entry(kb + b"\x12" + varint(len(av)) + av, tag)


def attr_int(key: str, value: int, tag: bytes = SPAN_ATTR) -> bytes:
    kb = _key_cache.get(key) or _key(key)
    v = _VARINT1[value] if 0 <= value < 128 else varint(value)
    n = len(v) + 1  # the AnyValue: tag 0x18 and the varint
    if len(kb) + n < 125:
        return b"".join((tag, _VARINT1[len(kb) + n + 2], kb, b"\x12", _VARINT1[n], b"\x18", v))
    av = b"\x18" + v
    return _entry(kb + b"\x12" + varint(len(av)) + av, tag)


def attr_bool(key: str, value: bool, tag: bytes = SPAN_ATTR) -> bytes:
    return _entry(_key(key) + b"\x12\x02\x10" + (b"\x01" if value else b"\x00"), tag)


def attr(key: str, value: object, tag: bytes = SPAN_ATTR) -> bytes:
    if isinstance(value, str):
        return attr_str(key, value, tag)
    if isinstance(value, bool):
        return attr_bool(key, value, tag)
    if isinstance(value, int):
        return attr_int(key, value, tag)
    if tag == SPAN_ATTR:
        return attr_double(key, float(value))  # type: ignore[arg-type]
    av = b"\x21" + _pack_d(float(value))  # type: ignore[arg-type]
    return _entry(_key(key) + b"\x12" + varint(len(av)) + av, tag)


def span_entry(
    trace_id: bytes,
    span_id: bytes,
    parent_span_id: bytes,
    name: bytes,
    start: int,
    end: int,
    attributes: bytes,
) -> bytes:
    """A complete INTERNAL span as one `ScopeSpans.spans` entry (field 2)."""
    if (
        len(trace_id) == 16 and len(span_id) == 8 and len(parent_span_id) == 8 and len(name) < 128
    ):  # the usual ids: their length prefixes are constants, the body's length known
        n = 60 + len(name) + len(attributes)  # before the join: one copy, not two
        return b"".join(
            (
                b"\x12", _VARINT1[n] if n < 128 else varint(n),
                _pack_ids(b"\x0a\x10", trace_id, b"\x12\x08", span_id, b"\x22\x08", parent_span_id),
                b"\x2a", _VARINT1[len(name)], name,
                _pack_times(b"\x30\x01\x39", start, b"\x41", end),
                attributes,
            )
        )  # fmt: skip
    body = b"".join(
        (
            b"\x0a", varint(len(trace_id)), trace_id,
            b"\x12", varint(len(span_id)), span_id,
            (b"\x22" + varint(len(parent_span_id)) + parent_span_id) if parent_span_id else b"",
            b"\x2a", varint(len(name)), name,
            b"\x30\x01",  # kind: SPAN_KIND_INTERNAL
            b"\x39", _pack_q(start),
            b"\x41", _pack_q(end),
            attributes,
        )
    )  # fmt: skip
    return b"\x12" + varint(len(body)) + body


def span_event(time_ns: int, name: str, attributes: bytes) -> bytes:
    """A Span.events entry (field 11) with encoded `attributes` (EVENT_ATTR entries);
    zero time and empty name left out, as protobuf leaves them out."""
    nb = name.encode("utf-8", "replace")
    body = b"".join(
        (
            b"\x09" + _pack_q(time_ns) if time_ns else b"",
            b"\x12" + varint(len(nb)) + nb if nb else b"",
            attributes,
        )
    )
    return b"\x5a" + varint(len(body)) + body


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it); IndexError when `buf` ends inside it."""
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def field_bounds(buf: bytes, pos: int, wire_type: int) -> tuple[int, int]:
    """(payload start, field end) of a field whose key was read up to `pos`; ValueError
    on a group (wire types 3 and 4: deprecated, never in OTLP)."""
    if wire_type == 2:
        n, pos = read_varint(buf, pos)
        return pos, pos + n
    if wire_type == 0:
        return pos, read_varint(buf, pos)[1]
    if wire_type == 1:
        return pos, pos + 8
    if wire_type == 5:
        return pos, pos + 4
    raise ValueError(f"unsupported wire type {wire_type}")


def split_entries(
    buf: bytes, start: int, end: int, tag: int
) -> tuple[list[tuple[int, int, int]], bytes]:
    """The message in buf[start:end] taken apart: the entries of one length-delimited
    field (`tag`: its one-byte key, e.g. 0x12 for field 2) as (entry start, payload start,
    payload end), and the bytes of all its other fields, in order, joined (kept verbatim:
    unknown fields too). ValueError on a truncated or unsupported (group) field."""
    out: list[tuple[int, int, int]] = []
    other: list[bytes] = []
    pos = start
    while pos < end:
        if buf[pos] == tag:
            p = pos + 1
            n = buf[p]
            if n < 128:
                p += 1
            else:
                n, p = read_varint(buf, p)
            e = p + n
            if e > end:
                raise ValueError("truncated field")
            out.append((pos, p, e))
            pos = e
            continue
        first = pos
        key, pos = read_varint(buf, pos)
        pos = field_bounds(buf, pos, key & 7)[1]
        if pos > end:
            raise ValueError("truncated field")
        other.append(buf[first:pos])
    return out, b"".join(other)
