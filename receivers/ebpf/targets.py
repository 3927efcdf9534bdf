"""Which processes are targets, kept in sync with the kernel's `targets` map.

A spec names processes by `pid`, by `exe` (the executable's path) or by `comm` (a regex
over the 16-byte task name).  At start every process in /proc is matched; after that the
exec events of bpf/proc.bpf.c bring processes that start later or restart (a new pid), and
exit events (plus a periodic /proc check, in case an exit event was lost) detach them.
The agent never targets itself: its own syscalls would feed its own event stream.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from otel_goblock.receivers.ebpf.gobinary import dwarf_goid_offset, goid_offset


@dataclass(frozen=True)
class Spec:
    pid: int | None = None
    exe: str | None = None
    comm: re.Pattern[str] | None = None

    def matches(self, pid: int, comm: str, exe: str) -> bool:
        if self.pid is not None:
            return pid == self.pid
        if self.exe is not None:
            return exe == self.exe or os.path.basename(exe) == self.exe
        if self.comm is not None:
            return self.comm.search(comm) is not None
        return False


def proc_identity(pid: int) -> tuple[str, str] | None:
    """(comm, exe path) of a live process, None when it is gone or unreadable."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().rstrip("\n")
    except OSError:
        return None
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    return comm, exe.removesuffix(" (deleted)")


class TargetSet:
    """Matches processes against specs and tells the kernel (add/remove callbacks)."""

    def __init__(
        self,
        specs: list[Spec],
        add: Callable[[int, int], None],
        remove: Callable[[int], None],
        logger: logging.Logger,
        on_go_binary: Callable[[int, str], None] | None = None,
    ) -> None:
        """`on_go_binary(pid, exe)` runs on the refiner thread once the binary has been read
        (DWARF, symbols): the receiver attaches its Go runtime uprobes from there."""
        self.specs = list(specs)
        self._on_go_binary = on_go_binary
        self._add = add
        self._remove = remove
        self._log = logger
        self.pids: dict[int, str] = {}  # pid → exe
        self._self = os.getpid()
        # DWARF reads (0.1-0.3 s) run here, after the target is attached with the table's
        # offset; one worker: binaries repeat, and the result is cached per binary
        self._refiner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ebpf-dwarf")

    def matches(self, pid: int, comm: str, exe: str) -> bool:
        return pid != self._self and any(s.matches(pid, comm, exe) for s in self.specs)

    def consider(self, pid: int, comm: str | None = None, exe: str | None = None) -> bool:
        """Attach `pid` if it matches a spec (called at start and on every exec)."""
        ident = proc_identity(pid)
        if ident is None:
            return False
        comm = ident[0] if comm is None else comm
        exe = ident[1] if exe is None or not exe.startswith("/") else exe
        if not self.matches(pid, comm, exe):
            if pid in self.pids:  # exec'd into something we do not watch
                self.detach(pid)
            return False
        off = goid_offset(f"/proc/{pid}/exe")
        self._add(pid, off)
        if pid not in self.pids:
            self._log.info("ebpf: attached pid %d (%s, %s, goid offset %d)", pid, comm, exe, off)
        self.pids[pid] = exe
        if off:
            self._refiner.submit(self._refine, pid, exe, off)
        return True

    def _refine(self, pid: int, exe: str, table_off: int) -> None:
        path = exe if exe.startswith("/") else f"/proc/{pid}/exe"
        off = dwarf_goid_offset(path)
        if off and off != table_off and self.pids.get(pid) == exe:
            self._add(pid, off)
            self._log.info(
                "ebpf: pid %d: g.goid at %d per DWARF (table said %d)", pid, off, table_off
            )
        if self._on_go_binary is not None and self.pids.get(pid) == exe:
            try:
                self._on_go_binary(pid, path)
            except Exception as e:  # a damaged binary must not stop the other targets
                self._log.warning("ebpf: pid %d: Go runtime probes not attached: %s", pid, e)

    def close(self) -> None:
        self._refiner.shutdown(wait=False, cancel_futures=True)

    def detach(self, pid: int) -> None:
        self._remove(pid)
        if self.pids.pop(pid, None) is not None:
            self._log.info("ebpf: detached pid %d", pid)

    def scan(self) -> None:
        """Match every live process; drop targets that are gone."""
        for name in os.listdir("/proc"):
            if name.isdigit():
                pid = int(name)
                if pid not in self.pids:
                    self.consider(pid)
        self.reap()

    def reap(self) -> None:
        for pid in list(self.pids):
            if not os.path.exists(f"/proc/{pid}"):
                self.detach(pid)


def parse_specs(raw: list) -> list[Spec]:
    """Config targets → specs (validation happened in Config.validate)."""
    out = []
    for t in raw:
        out.append(
            Spec(
                pid=t.pid,
                exe=t.exe,
                comm=re.compile(t.comm) if t.comm is not None else None,
            )
        )
    return out
