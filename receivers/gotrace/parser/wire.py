"""Reading the outer layer of the wire format: the header and the batches.

A trace is `go 1.XX trace\\0\\0\\0` followed by batches. A batch is
`EvEventBatch gen m time size` (uleb128 varints) and `size` bytes of events, or
`EvExperimentalBatch exp gen m time size data`, or (Go 1.26+) a lone
`EvEndOfGeneration` byte. Batches are ≤ 64 KiB (tracev2.MaxBatchSize), so reading
one batch at a time keeps memory bounded whatever the file size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO

from .errors import TraceParseError, UnsupportedTraceVersion
from .spec import SUPPORTED_VERSIONS, VERSION_LAST_EVENT, Ev

MAX_BATCH_SIZE = 64 << 10  # tracev2.MaxBatchSize
MAX_STRING_SIZE = 1 << 10  # tracev2.MaxEventTrailerDataSize
MAX_FRAMES_PER_STACK = 128  # tracev2.MaxFramesPerStack
NO_THREAD = (1 << 64) - 1  # the M id of batches not written by an M (strings, stacks, sync)

_HEADER_LEN = 16
_HEADER_RE = re.compile(rb"go 1\.(\d+) trace\x00\x00\x00")
_CHUNK = 1 << 20


def uvarint(data: bytes | bytearray | memoryview, pos: int) -> tuple[int, int]:
    """Decode one uleb128 at `pos`; returns (value, next position).

    Raises TraceParseError on a varint longer than 10 bytes (as Go's binary.Uvarint) or
    running past the end of `data`.
    """
    value = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end:
            raise TraceParseError("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            if shift == 63 and b > 1:
                raise TraceParseError("varint overflows uint64")
            return value, pos
        shift += 7
        if shift > 63:
            raise TraceParseError("varint longer than 10 bytes")


@dataclass(slots=True)
class Batch:
    """One batch: its header and undecoded payload."""

    gen: int
    m: int
    time: int  # base timestamp, in trace clock ticks
    data: bytes
    exp: int = 0  # experiment id (ExperimentalBatch), 0 = a regular batch
    end_of_generation: bool = False
    offset: int = 0  # byte offset of the batch header in the stream

    @property
    def kind(self) -> int:
        """The first event type of the payload (what kind of batch this is)."""
        return self.data[0] if self.data else 0


class BatchReader:
    """Reads the header, then batches one by one, from a binary stream.

    Owns a read-ahead buffer so that varints of a batch header never cost a `read()` call
    each; `offset` counts bytes consumed, for error messages.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buf = b""
        self._pos = 0
        self._base = 0  # stream offset of _buf[0]
        self.version = self._read_header()
        self._last = VERSION_LAST_EVENT[self.version]

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def _fill(self, need: int) -> bool:
        """Make at least `need` bytes available from _pos on; False if the stream ends first."""
        while len(self._buf) - self._pos < need:
            chunk = self._stream.read(max(_CHUNK, need))
            if not chunk:
                return False
            self._base += self._pos
            self._buf = self._buf[self._pos :] + chunk
            self._pos = 0
        return True

    def _read_header(self) -> int:
        self._fill(_HEADER_LEN)
        head = self._buf[:_HEADER_LEN]
        m = _HEADER_RE.fullmatch(head)
        if m is None:
            lead = re.match(rb"go 1\.(\d+) trace", head)
            if lead is not None:
                minor = int(lead.group(1))
                if minor not in VERSION_LAST_EVENT:  # a Go trace of a layout we do not know
                    raise UnsupportedTraceVersion(f"go 1.{minor}", SUPPORTED_VERSIONS)
                raise TraceParseError(f"truncated or malformed go 1.{minor} header", offset=0)
            raise TraceParseError("bad file format: not a Go execution trace (no header)", offset=0)
        minor = int(m.group(1))
        if minor not in VERSION_LAST_EVENT:
            raise UnsupportedTraceVersion(f"go 1.{minor}", SUPPORTED_VERSIONS)
        self._pos = _HEADER_LEN
        return minor

    def _varint(self) -> int:
        # A varint is at most 10 bytes; the batch header fits in the read-ahead buffer.
        self._fill(10)
        try:
            value, self._pos = uvarint(self._buf, self._pos)
        except TraceParseError as e:
            raise TraceParseError(f"batch header: {e}", offset=self.offset) from None
        return value

    def next_batch(self) -> Batch | None:
        """The next batch, or None at a clean end of stream (between batches)."""
        if not self._fill(1):
            return None
        start = self.offset
        typ = self._buf[self._pos]
        self._pos += 1
        if typ == Ev.END_OF_GENERATION and self._last >= Ev.END_OF_GENERATION:
            return Batch(gen=0, m=NO_THREAD, time=0, data=b"", end_of_generation=True, offset=start)
        exp = 0
        if typ == Ev.EXPERIMENTAL_BATCH and self._last >= Ev.EXPERIMENTAL_BATCH:
            if not self._fill(1):
                raise TraceParseError("truncated experimental batch header", offset=start)
            exp = self._buf[self._pos]
            self._pos += 1
        elif typ != Ev.EVENT_BATCH:
            raise TraceParseError(f"expected a batch, got event type {typ}", offset=start)
        gen = self._varint()
        m = self._varint()
        ts = self._varint()
        size = self._varint()
        if size > MAX_BATCH_SIZE:
            raise TraceParseError(
                f"invalid batch size {size}, maximum is {MAX_BATCH_SIZE}", offset=start
            )
        if not self._fill(size):
            raise TraceParseError(
                f"truncated batch: wanted {size} bytes, stream has {len(self._buf) - self._pos}",
                offset=start,
            )
        data = self._buf[self._pos : self._pos + size]
        self._pos += size
        if gen == 0:
            raise TraceParseError("invalid generation number 0", offset=start)
        return Batch(gen=gen, m=m, time=ts, data=data, exp=exp, offset=start)
