"""receivers/ebpf/ring.py against a real BPF ring buffer: order, discards, wrap-around, a
full ring, bounded drains, the epoll wakeup; and the header walk on a record still being
written (a state the kernel holds only for the instant between reserve and submit, so it
is built as bytes)."""

from __future__ import annotations

import ctypes
import random
import struct
import threading
from collections.abc import Iterator

import pytest
from otel_goblock.receivers.ebpf import decode, program
from otel_goblock.receivers.ebpf.ring import (
    BUSY,
    DISCARD,
    RingReader,
    RingSet,
    record_struct,
    walk,
)

pytestmark = pytest.mark.ebpf

# an invalid syscall number (ENOSYS), distinct from test_decode_layout.py's
_NR = 0x7A12
_BODY = "<QQII"  # struct rec below: 24 bytes, 32 with the header
_BODY_SIZE = struct.calcsize(_BODY)


@pytest.fixture(scope="module")
def ring() -> Iterator[tuple[object, RingSet]]:
    bcc = program.import_bcc()
    text = f"""
struct rec {{ u64 seq; u64 tag; u32 pid; u32 flags; }};
BPF_RINGBUF_OUTPUT(test_ring, 1);
TRACEPOINT_PROBE(raw_syscalls, sys_enter)
{{
    if (args->id != {_NR} || (u32)bpf_get_current_pid_tgid() != {threading.get_native_id()})
        return 0;
    struct rec *r = test_ring.ringbuf_reserve(sizeof(*r));
    if (!r)
        return 0;
    r->seq = args->args[0];
    r->tag = args->args[1];
    r->pid = 42;
    r->flags = 7;
    if (args->args[1] & 1)
        test_ring.ringbuf_discard(r, 0);
    else
        test_ring.ringbuf_submit(r, 0);
    return 0;
}}
"""
    b = bcc.BPF(text=text.encode())
    rings = RingSet()
    t = b[b"test_ring"]
    reader = RingReader(t.map_fd, int(t.max_entries), record_struct(_BODY, _BODY_SIZE), _BODY_SIZE)
    rings.add("test_ring", reader)
    yield reader, rings
    rings.close()
    b.cleanup()


def _emit(seqs: range, discard: set[int] | None = None) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.argtypes = [ctypes.c_long, ctypes.c_uint64, ctypes.c_uint64]
    for s in seqs:
        libc.syscall(_NR, s, 1 if discard and s in discard else 0)


def test_records_in_order_without_the_discarded_ones_across_wraps(ring) -> None:
    reader, _ = ring
    assert reader.size == 4096 and reader.stride == 32  # 128 slots
    assert reader.drain(1000) == []
    seen: list[int] = []
    for lap in range(5):  # 5 x 100 records through 128 slots: every lap wraps
        seqs = range(lap * 100, lap * 100 + 100)
        discard = {s for s in seqs if s % 7 == 3}
        _emit(seqs, discard)
        while True:
            recs = reader.drain(17)  # bounded drains: 17 records at most each
            assert len(recs) <= 17
            if not recs:
                break
            seen += [r[0] for r in recs]
            assert all(r[1:] == (0, 42, 7) for r in recs)
    assert seen == [s for s in range(500) if s % 7 != 3]
    assert reader.malformed == 0


def test_region_is_whole_slots_back_to_back(ring) -> None:
    reader, _ = ring
    _emit(range(1000, 1010), {1004})
    region, n = reader.drain_region(100)
    assert n == 9 and len(region) == 9 * reader.stride
    seqs = [struct.unpack_from("<Q", region, k * reader.stride + 8)[0] for k in range(n)]
    assert seqs == [s for s in range(1000, 1010) if s != 1004]
    assert reader.drain_region(100) == (b"", 0)


def test_a_full_ring_keeps_what_fit_and_drains_it(ring) -> None:
    reader, _ = ring
    # the kernel keeps a ring short of full (a reservation fails once the records would
    # span more than size - 1 bytes): 127 of the 128 slots, then it refuses
    _emit(range(200))
    recs = reader.drain(1000)
    assert [r[0] for r in recs] == list(range(127))
    _emit(range(3))  # room again
    assert [r[0] for r in reader.drain(1000)] == [0, 1, 2]


def test_epoll_wakes_once_per_kernel_wakeup(ring) -> None:
    reader, rings = ring
    reader.drain(1000)
    rings.wait(0)  # edge-triggered: forget the wakeups of the records of earlier tests
    assert rings.wait(0) is False
    _emit(range(1))  # flags 0: the kernel wakes a consumer that caught up
    assert rings.wait(1000) is True
    assert rings.wait(0) is False  # one wakeup, reported once
    assert len(reader.drain(1000)) == 1


def _slot(seq: int, length: int = _BODY_SIZE) -> bytes:
    body = struct.pack(_BODY, seq, 0, 42, 7)
    return struct.pack("<II", length, 0) + body


def test_walk_stops_at_a_record_being_written_and_skips_discards_and_odd_sizes() -> None:
    region = (
        _slot(1)
        + _slot(2, _BODY_SIZE | DISCARD)
        + struct.pack("<II", 8, 0)
        + bytes(8)  # an 8-byte record: not this ring's layout
        + _slot(3)
        + _slot(4, _BODY_SIZE | BUSY)
        + _slot(5)  # committed, but after a busy one: the next drain's
    )
    slots, used, malformed = walk(region, _BODY_SIZE)
    assert [struct.unpack_from("<Q", s, 8)[0] for s in slots] == [1, 3]
    assert used == 3 * 32 + 16 and malformed == 1
    # a record cut by the end of the drained bytes waits for the next drain
    slots, used, _ = walk(_slot(1) + _slot(2)[:20], _BODY_SIZE)
    assert len(slots) == 1 and used == 32


@pytest.mark.parametrize("layout", decode.LAYOUTS, ids=lambda lay: lay.c_name)
def test_columns_read_what_unpack_reads(layout: decode.Layout) -> None:
    """decode.columns (the syscall hot path's strided views) against one unpack per record,
    on random records: every integer field, signed ones negative too."""
    rnd = random.Random(layout.c_name)
    slot = record_struct(layout.fmt, layout.size)
    items = [  # (name, code) of every packed value, named padding included
        (n, c)
        for n, c in zip(layout.fields, decode._tokens(layout.fmt.lstrip("<")), strict=True)
        if not c.endswith("x")
    ]
    records = []
    for _ in range(50):
        vals: list[int | bytes] = []
        for _name, code in items:
            if code.endswith("s"):
                vals.append(rnd.randbytes(int(code[:-1])))
            else:
                bits = 8 * struct.calcsize(code)
                if code.islower():  # signed
                    vals.append(rnd.randint(-(1 << (bits - 1)), (1 << (bits - 1)) - 1))
                else:
                    vals.append(rnd.randint(0, (1 << bits) - 1))
        records.append(tuple(vals))
    body = struct.Struct(layout.fmt)
    pad = bytes(slot.size - 8 - body.size)
    region = b"".join(struct.pack("<II", body.size, 0) + body.pack(*r) + pad for r in records)
    ints = tuple(n for n, c in layout.codes().items() if not c.endswith("s"))
    cols = decode.columns(layout, region, slot.size, ints)
    names = [n for n, _ in items]
    for name, col in zip(ints, cols, strict=True):
        assert col == [r[names.index(name)] for r in records], name
    assert list(slot.iter_unpack(region)) == records
