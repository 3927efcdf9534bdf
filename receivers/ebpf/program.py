"""Builds, compiles and attaches the BPF side (bpf/*.bpf.c) as one BCC module.

One module, so that the shared maps of bpf/goblock.h (targets, tid → goid cache, config,
loss counters) are the same maps for every program; each concern is its own source file
and ring buffer, included only when enabled.  BCC attaches every TRACEPOINT_PROBE while
it loads the module; `close()` detaches and unloads them all.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otel_goblock.receivers.ebpf.ring import RingReader, RingSet, record_struct

BPF_DIR = Path(__file__).resolve().parents[2] / "bpf"

# index constants mirrored from bpf/goblock.h (checked by tests/ebpf/test_decode_layout.py)
CFG_SYSCALL_THRESHOLD_NS = 0
CFG_OFFCPU_THRESHOLD_NS = 1
CFG_TCP_PROBE_INTERVAL_NS = 2
CFG_PARK_THRESHOLD_NS = 3
CFG_ASSIST_THRESHOLD_NS = 4
CFG_NETPOLL_PEERS = 5
CFG_TCP_STATES_ALL = 6
CFG_TCP_PROBE_MIN_AGE_NS = 7
LOST_SYSCALL, LOST_SCHED, LOST_TCP, LOST_PROC, LOST_GO = 0, 1, 2, 3, 4
LOST_NAMES = {
    LOST_SYSCALL: "syscall",
    LOST_SCHED: "sched",
    LOST_TCP: "tcp",
    LOST_PROC: "proc",
    LOST_GO: "go",
}


def import_bcc() -> Any:
    """Debian's bcc module (not the PyPI `bcc`): linked into the venv by setup_ebpf.sh."""
    try:
        import bcc  # type: ignore[import-not-found]
    except ImportError:
        import sys

        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            import bcc  # type: ignore[import-not-found]
        finally:
            sys.path.remove("/usr/lib/python3/dist-packages")
    if not hasattr(bcc, "BPF"):
        raise ImportError(f"the `bcc` found at {bcc.__file__} is not BCC (PyPI's lattice `bcc`?)")
    return bcc


@dataclass(frozen=True)
class ProgramOptions:
    syscalls: bool = True
    sched: bool = True
    tcp: bool = True
    goruntime: bool = False  # bpf/goruntime.bpf.c: programs for the Go runtime uprobes
    grpc: bool = False  # bpf/grpc.bpf.c: programs for the grpc-go transport uprobes
    ring_pages: int = 256
    fsbase_offset: int = 0
    fd_offsets: tuple[tuple[str, int], ...] = ()  # GOBLOCK_OFF_* → value, from BTF


def source_text(opts: ProgramOptions) -> tuple[str, list[str]]:
    """The module's C text and cflags."""
    # goruntime first: the syscalls program calls its go_resumed()
    concerns = (
        ("goruntime", opts.goruntime),
        ("grpc", opts.grpc),
        ("syscalls", opts.syscalls),
        ("sched", opts.sched),
        ("tcp", opts.tcp),
    )
    files = [f for f, on in concerns if on]
    files.append("proc")  # target tracking; last, it cleans the per-thread maps of the others
    # BCC rewrites map calls (`map.lookup(...)`) only in the main text, not in #included
    # files: the shared header goes in as text first; its include guard then makes each
    # source's own `#include "goblock.h"` (kept so the sources stand alone) a no-op.
    parts = [(BPF_DIR / "goblock.h").read_text()]
    parts += [(BPF_DIR / f"{f}.bpf.c").read_text() for f in files]
    text = "\n".join(parts)
    cflags = [
        f"-I{BPF_DIR}",
        f"-DGOBLOCK_RING_PAGES={opts.ring_pages}",
        f"-DGOBLOCK_WAKEUP_EVERY={wakeup_every(opts.ring_pages)}",
        f"-DGOBLOCK_FSBASE_OFF={opts.fsbase_offset}",
        *(f"-D{name}={value}" for name, value in opts.fd_offsets),
        "-Wno-macro-redefined",
    ]
    if opts.goruntime:
        cflags.append("-DGOBLOCK_GORUNTIME")
        if platform.machine() in ("aarch64", "arm64"):
            cflags.append("-DGOBLOCK_ARCH_ARM64")
    if opts.syscalls:
        cflags.append("-DGOBLOCK_SYSCALLS")
    if opts.sched:
        cflags.append("-DGOBLOCK_SCHED")
    if opts.tcp:
        cflags.append("-DGOBLOCK_TCP")
        if not _headers_define("rstreason.h"):
            cflags.append("-DGOBLOCK_DECLARE_SK_RST_REASON")
    return text, cflags


# the largest record a batched ring carries, header included (syscall_event: 112 bytes)
_RECORD_BOUND = 128


def wakeup_every(ring_pages: int, ncpu: int | None = None) -> int:
    """Records a CPU submits between two wakeups of the poll thread (bpf/goblock.h
    wakeup_flags): all CPUs together fill at most a quarter of a ring before a wakeup."""
    ncpu = ncpu or os.cpu_count() or 1
    return max(1, ring_pages * 4096 // _RECORD_BOUND // (4 * ncpu))


def _headers_define(header: str) -> bool:
    """Whether the kernel headers BCC compiles against have include/net/<header>."""
    kdir = Path("/lib/modules") / os.uname().release
    return any((kdir / d / "include" / "net" / header).exists() for d in ("build", "source"))


class Program:
    """The loaded module: map access for the receiver, detach on close."""

    def __init__(self, opts: ProgramOptions) -> None:
        self.opts = opts
        bcc = import_bcc()
        text, cflags = source_text(opts)
        self.bpf = bcc.BPF(text=text.encode(), cflags=cflags)
        self.rings = RingSet()
        self._closed = False

    def table(self, name: str) -> Any:
        return self.bpf[name.encode()]

    def set_config(self, idx: int, value: int) -> None:
        t = self.bpf[b"config"]
        t[ctypes.c_int(idx)] = ctypes.c_uint64(value)

    def add_target(self, pid: int, goid_off: int) -> None:
        t = self.bpf[b"targets"]
        leaf = t.Leaf()
        leaf.goid_off = goid_off
        leaf.flags = 0
        t[t.Key(pid)] = leaf

    def remove_target(self, pid: int) -> None:
        t = self.bpf[b"targets"]
        with contextlib.suppress(KeyError):
            del t[t.Key(pid)]

    def target_pids(self) -> set[int]:
        return {k.value for k in self.bpf[b"targets"]}

    def lost_counts(self) -> dict[str, int]:
        t = self.bpf[b"lost"]
        out = {}
        for idx, name in LOST_NAMES.items():
            out[name] = int(sum(t[ctypes.c_int(idx)]))
        return out

    def open_ring(self, name: str, body_fmt: str, body_size: int) -> RingReader:
        """The ring-buffer map `name`, mapped for draining (receivers/ebpf/ring.py), its
        records decoded with the struct format `body_fmt` (`body_size` bytes)."""
        t = self.table(name)
        slot = record_struct(body_fmt, body_size)
        return self.rings.add(name, RingReader(t.map_fd, int(t.max_entries), slot, body_size))

    def wait(self, timeout_ms: int) -> None:
        """Wait up to timeout_ms for a wakeup (an exec, or a CPU's wakeup_every-th record);
        the caller then drains every ring: most records are submitted without a wakeup."""
        self.rings.wait(timeout_ms)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.rings.close()
            self.bpf.cleanup()
