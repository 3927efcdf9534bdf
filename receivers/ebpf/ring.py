"""BPF ring buffers read straight from their memory mapping, a whole drain at a time.

Why not BCC's `open_ring_buffer` / `ring_buffer_poll`: libbpf calls back into Python once
per record through ctypes (a C→Python transition, a `string_at` copy and an `unpack` call
each), about half of the poll thread's CPU under a syscall storm.  Here the ring is mapped
the way libbpf maps it (the consumer page read-write; the producer page and the data area,
which the kernel maps twice in a row so a record that wraps is still contiguous, read-only)
and a drain copies every committed byte between the consumer and producer positions in one
slice, then decodes all its records with one `struct.iter_unpack`: no per-record call from
C, no per-record bytes object.

The protocol (kernel/bpf/ringbuf.c, libbpf ringbuf.c): each record starts with an 8-byte
header, a u32 length whose bit 31 (BUSY) is set while the producer still writes it and bit
30 (DISCARD) when it was discarded, then a u32 page offset; records are 8-byte aligned.
Records are committed out of order across CPUs, so a drain stops at the first BUSY record.
The consumer position is published with one aligned 8-byte store (ctypes `c_uint64`), after
the records were copied out: on x86-64 (TSO) a plain store is a release store; on arm64
Python offers no barrier, and the interpreter's own atomics between the copy and the
store are what keep the copy's loads before it (libbpf uses smp_store_release).
Every ring here carries one fixed-size record type, so the
usual drain checks all headers at once (a strided view of the copy) and only a BUSY or
discarded record makes it walk the headers one by one.

Waiting: a ring-buffer map fd is pollable (readable while it holds data), so one epoll
over all the rings replaces libbpf's.  Edge-triggered, unlike libbpf's: level-triggered,
epoll re-checks a ring after every drain and returns at once when any record came in
meanwhile, without a wakeup, so under a steady trickle the poll thread drained as fast as
it could (~250 drains/s of ~80 records at 20k events/s) and per-drain costs (handing a
batch to the pipeline's loop, naming fds) dominated.  Edge-triggered, only the kernel's
wakeups end a wait — every wakeup_every-th record per CPU (program.py, goblock.h
wakeup_flags: a quarter of a ring over all CPUs) and records
submitted to an idle consumer (execs) — and the poll interval bounds the latency of the
rest.  Nothing is missed: each wakeup drains every ring, and a wakeup that comes while
draining is queued for the next wait.
"""

from __future__ import annotations

import ctypes
import mmap
import select
import struct

BUSY = 1 << 31
DISCARD = 1 << 30
HDR = 8
PAGE = mmap.PAGESIZE


def record_struct(body_fmt: str, body_size: int) -> struct.Struct:
    """The struct of one ring slot: header skipped, the record, the padding to 8 bytes."""
    stride = (HDR + body_size + 7) & ~7
    s = struct.Struct("<8x" + body_fmt.lstrip("<") + f"{stride - HDR - body_size}x")
    if s.size != stride:
        raise ValueError(f"{body_fmt!r}: {s.size} bytes, expected {stride}")
    return s


def walk(region: bytes, body_size: int) -> tuple[list[bytes], int, int]:
    """Header by header through `region` (ring bytes from the consumer position on): stops
    at the first record still being written (BUSY), skips discarded ones and ones that are
    not `body_size` bytes (skipped, not raised: the ring would stall on them forever).
    Returns the records' slots (header included), the bytes consumed, the records skipped
    for their size."""
    out: list[bytes] = []
    hdr = struct.Struct("<I").unpack_from
    pos, end, malformed = 0, len(region), 0
    while pos + HDR <= end:
        (length,) = hdr(region, pos)
        if length & BUSY:
            break
        size = length & ~(BUSY | DISCARD)
        step = (HDR + size + 7) & ~7
        if pos + step > end:
            break  # the rest of the record is past the drained bytes: the next drain
        if not length & DISCARD:
            if size == body_size:
                out.append(region[pos : pos + step])
            else:
                malformed += 1
        pos += step
    return out, pos, malformed


class RingReader:
    """One BPF_MAP_TYPE_RINGBUF map of `size` data bytes whose records are all `body_size`
    bytes, decoded with `slot` (from record_struct)."""

    def __init__(self, map_fd: int, size: int, slot: struct.Struct, body_size: int) -> None:
        if size & (size - 1) or size % PAGE:
            raise ValueError(f"ring size {size} is not a power-of-two number of pages")
        self.fd = map_fd
        self.size = size
        self._mask = size - 1
        self._slot = slot
        self._stride = slot.size
        self._body = body_size
        self._cons_map = mmap.mmap(map_fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self._prod_map = mmap.mmap(
            map_fd, PAGE + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=PAGE
        )
        # the consumer position: read and published as one aligned 8-byte word
        self._cons = ctypes.c_uint64.from_buffer(self._cons_map)
        self._prod_pos = struct.Struct("<Q").unpack_from
        self.malformed = 0  # records of an unexpected size, skipped (a layout bug)

    @property
    def stride(self) -> int:
        """Bytes from one record's header to the next's (header + body, 8-aligned)."""
        return self._stride

    def drain_region(self, max_records: int) -> tuple[bytes, int]:
        """Up to `max_records` committed records, oldest first, as `n` slots of `stride`
        bytes back to back (headers included, discarded records left out), and `n`;
        consumed (their space given back to the kernel) on return."""
        cons = self._cons.value
        avail = self._prod_pos(self._prod_map, 0)[0] - cons
        if avail <= 0:
            return b"", 0
        stride = self._stride
        avail = min(avail, max_records * stride)
        start = PAGE + (cons & self._mask)
        region = self._prod_map[start : start + avail]  # one copy of the whole drain
        n, rest = divmod(avail, stride)
        if not rest:
            # every header at once: a u32 view, one header every stride/4 words
            hdrs = memoryview(region).cast("I")[:: stride // 4].tolist()
            if hdrs.count(self._body) == n:
                self._cons.value = cons + avail
                return region, n
            first_bad = next(k for k, h in enumerate(hdrs) if h != self._body)
            if hdrs[first_bad] & BUSY:
                # the usual exception: a record still being written (the ones before it
                # are all whole; the ones after wait for the next drain)
                self._cons.value = cons + first_bad * stride
                return region[: first_bad * stride], first_bad
        slots, used, malformed = walk(region, self._body)
        self.malformed += malformed
        if used:
            self._cons.value = cons + used
        return b"".join(slots), len(slots)

    def drain(self, max_records: int) -> list[tuple]:
        """drain_region's records, each a tuple of the slot struct's fields."""
        region, _ = self.drain_region(max_records)
        return list(self._slot.iter_unpack(region)) if region else []

    def close(self) -> None:
        del self._cons  # releases the exported buffer so the mapping can close
        self._cons_map.close()
        self._prod_map.close()


class RingSet:
    """Several rings and one epoll over them."""

    def __init__(self) -> None:
        self.rings: dict[str, RingReader] = {}
        self._epoll = select.epoll()

    def add(self, name: str, reader: RingReader) -> RingReader:
        self.rings[name] = reader
        self._epoll.register(reader.fd, select.EPOLLIN | select.EPOLLET)
        return reader

    def wait(self, timeout_ms: int) -> bool:
        """Until a ring signals data or the timeout; True when one did."""
        return bool(self._epoll.poll(timeout_ms / 1000))

    def close(self) -> None:
        for r in self.rings.values():
            self._epoll.unregister(r.fd)
            r.close()
        self.rings.clear()
        self._epoll.close()
