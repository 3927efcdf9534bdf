"""Fuzz the BPF record decoders (receivers/ebpf/decode.py and the receiver's syscall
naming): any bytes of a layout's size decode to an Event (or None for a Go record of an
unknown kind) with plain attribute values, never an exception — a kernel-side bug or a
header/struct mismatch must not kill the poll thread. Bytes of the wrong size fail with
struct.error, which the receiver never produces (the ring hands whole records)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from otel_goblock.receivers.ebpf import decode
from otel_goblock.receivers.ebpf.fdtarget import FdResolver
from otel_goblock.receivers.ebpf.syscalls import syscall_name, takes_fd

from otel_goblock.pdata import Event

from .hypothesis_profiles import PROFILE

OFFSET = 1_700_000_000_000_000_000
PLAIN = (str, int, float, bool)


def record(layout: decode.Layout) -> st.SearchStrategy[bytes]:
    return st.binary(min_size=layout.size, max_size=layout.size)


def check(ev: Event | None) -> None:
    if ev is None:
        return
    assert isinstance(ev, Event)
    assert all(isinstance(getattr(ev, f), int) for f in ("pid", "tid", "goid", "start_ns"))
    for k, v in ev.attrs.items():
        assert isinstance(k, str) and isinstance(v, PLAIN), (k, v)


@PROFILE
@given(record(decode.SCHED_EVENT))
def test_sched_records(raw: bytes) -> None:
    check(decode.sched_event(decode.unpack_sched(raw), OFFSET))


@PROFILE
@given(record(decode.TCP_EVENT))
def test_tcp_records(raw: bytes) -> None:
    check(decode.tcp_event(decode.unpack_tcp(raw), OFFSET))


@PROFILE
@given(record(decode.GO_EVENT), st.dictionaries(st.integers(0, 300), st.text(max_size=20)))
def test_go_records(raw: bytes, reasons: dict[int, str]) -> None:
    check(decode.go_event(decode.unpack_go(raw), OFFSET, reasons, reasons))


@PROFILE
@given(record(decode.PROC_EVENT))
def test_proc_records(raw: bytes) -> None:
    # as the receiver's _handle_proc reads them: NUL-terminated names, any bytes
    _ts, pid, _tid, kind, comm, filename = decode.unpack_proc(raw)
    assert isinstance(pid, int) and isinstance(kind, int)
    for b in (comm, filename):
        assert isinstance(b.split(b"\0", 1)[0].decode(errors="replace"), str)


_FDS = FdResolver(max_entries=256)


@PROFILE
@given(record(decode.SYSCALL_EVENT))
def test_syscall_records_named_as_the_receiver_does(raw: bytes) -> None:
    _s, _e, _g, _r, arg0, pid, _t, nr, mode, ino, name = decode.unpack_syscall(raw)
    assert isinstance(syscall_name(nr), str)
    if takes_fd(nr):
        fd = arg0 & 0xFFFFFFFF
        fd = fd - (1 << 32) if fd >= 1 << 31 else fd
        target = _FDS.resolve(pid, fd, mode, ino, name) if fd >= 0 else ""
        assert isinstance(target, str)


@pytest.mark.parametrize("layout", decode.LAYOUTS, ids=lambda lay: lay.c_name)
def test_short_records_fail_clearly(layout: decode.Layout) -> None:
    with pytest.raises(struct.error):
        layout.struct.unpack_from(b"\0" * (layout.size - 1))
