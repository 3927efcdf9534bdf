"""Uprobes attached once per binary and shared by the target processes that run it.

Why per binary (pid -1) rather than per process: removing a uprobe costs ~0.15 s of
kernel time each, and a Go service restarts and runs replicas; attaching per process
made every restart pay for a full set. The BPF programs act only for pids in their
per-pid maps, so a restart or a second replica costs one map write. A binary's probes
stay `grace_s` after its last target exits, for the restart that usually follows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger("otel_goblock.receiver.ebpf.uprobes")
P = TypeVar("P")


def attach_uprobe_at(bpf: Any, path: bytes, offset: int, fn_name: str, pid: int) -> bytes:
    """BCC's attach_uprobe at a known file offset, returning the event name to detach.

    Why not `bpf.attach_uprobe(addr=...)`: it resolves the address through the binary's
    ELF symbol table on every call (and so does detach_uprobe), about 0.1 s per probe on a
    Go binary; the offsets here come from otel_goblock.golang, computed once per binary.
    The steps are the ones BCC 0.26's attach_uprobe takes after its resolution."""
    from bcc.libbcc import lib  # type: ignore[import-not-found]

    bpf._check_probe_quota(1)
    fn = bpf.load_func(fn_name.encode(), bpf.KPROBE)
    ev = bpf._get_uprobe_evname(b"p", path, offset, pid)
    fd = lib.bpf_attach_uprobe(fn.fd, 0, ev, path, offset, pid)
    if fd < 0:
        raise OSError(f"cannot attach uprobe {fn_name} at {path.decode()}+{offset:#x} pid {pid}")
    bpf._add_uprobe_fd(ev, fd)
    return ev


class BinaryUprobes(Generic[P]):
    """The uprobes of one probe family set, per binary, with the pids that use them."""

    def __init__(self, bpf: Any, what: str, pid_table: str, grace_s: float = 30.0) -> None:
        """`pid_table`: the BPF hash (keyed by pid) that tells the programs whom to act
        for; the caller writes a pid's entry after `attach`, `detach` removes it."""
        self._bpf = bpf
        self._what = what  # for the log: "Go runtime", "grpc"
        self._pid_table = pid_table
        self._grace_s = grace_s
        # binary realpath → (plan, uprobe event names, target pids running it)
        self._binaries: dict[str, tuple[P, list[bytes], set[int]]] = {}
        self._pids: dict[int, str] = {}
        self._idle: dict[str, float] = {}  # binaries without targets → since (monotonic)
        self._said: set[str] = set()  # binaries whose degraded note was logged

    def attach(
        self,
        pid: int,
        exe: str,
        make_plan: Callable[[str], P],
        points: Callable[[str, P], list[tuple[str, int]]],
        degraded: Callable[[P], list[str]],
    ) -> P:
        """The plan of `pid`'s binary, its uprobes attached (once per binary):
        `points(path, plan)` gives (BPF program, file offset) pairs."""
        if pid in self._pids:
            return self._binaries[self._pids[pid]][0]
        path = os.path.realpath(exe)
        entry = self._binaries.get(path)
        if entry is None:
            plan = make_plan(path)
            events: list[bytes] = []
            try:
                for prog, offset in points(path, plan):
                    events.append(attach_uprobe_at(self._bpf, path.encode(), offset, prog, -1))
            except Exception:
                self._detach_events(events)
                raise
            entry = self._binaries[path] = (plan, events, set())
            if path not in self._said:
                self._said.add(path)
                for note in degraded(plan):
                    log.warning("degraded %s probes: %s", self._what, note, extra={"pid": pid})
        entry[2].add(pid)
        self._idle.pop(path, None)
        self._pids[pid] = path
        return entry[0]

    def detach(self, pid: int) -> bool:
        """Forget `pid` (False when it was not attached); its binary's uprobes go
        `grace_s` after the binary's last pid, in `reap_idle`."""
        path = self._pids.pop(pid, None)
        if path is None:
            return False
        table = self._bpf[self._pid_table]
        with contextlib.suppress(KeyError):
            del table[table.Key(pid)]
        pids = self._binaries[path][2]
        pids.discard(pid)
        if not pids:
            self._idle[path] = time.monotonic()
        return True

    def reap_idle(self, grace_s: float | None = None) -> None:
        grace = self._grace_s if grace_s is None else grace_s
        now = time.monotonic()
        for path, since in list(self._idle.items()):
            entry = self._binaries.get(path)
            if entry is not None and entry[2]:
                del self._idle[path]  # a target came back
            elif now - since >= grace:
                del self._idle[path]
                if entry is not None:
                    del self._binaries[path]
                    self._detach_events(entry[1])

    def close(self) -> None:
        """Forget every pid and remove every uprobe now (no grace)."""
        for pid in list(self._pids):
            self.detach(pid)
        self.reap_idle(grace_s=0.0)

    def pids(self) -> list[int]:
        return list(self._pids)

    def plan(self, pid: int) -> P | None:
        path = self._pids.get(pid)
        return self._binaries[path][0] if path is not None else None

    def _detach_events(self, events: list[bytes]) -> None:
        for ev in events:
            try:
                self._bpf.detach_uprobe_event(ev)
            except Exception as e:  # the binary may be gone; its probes went with it
                log.debug("uprobe detach failed", extra={"error": str(e)})
