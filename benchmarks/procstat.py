"""CPU time and memory of a process tree, read from /proc.

Why not psutil's cpu_percent: the benchmark needs CPU-seconds over an exact window (utime +
stime deltas of the pipeline process and any children it spawned), and the kernel's own
peak RSS (VmHWM) rather than a sampled guess. Also reads how busy a given core was, so the
report can say how much of the pipeline's core other work on the machine took.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(c) for c in f.read().split())
    except OSError:
        pass
    return kids


def tree(pid: int) -> list[int]:
    """pid and all its descendants alive now."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), seconds; 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14, 15 of proc(5)


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return 0


def hwm_bytes(pid: int) -> int:
    """Kernel-tracked peak RSS (VmHWM) of one process."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def runq_wait_seconds(pid: int) -> dict[int, float]:
    """Time each thread of pid spent runnable but waiting for a CPU (schedstat field 2),
    by thread id. Contention on a shared machine shows here, not in CPU time."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                out[int(tid)] = int(f.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            pass
    return out


def set_autogroup_nice(pid: int, nice: int) -> bool:
    """Set the priority of pid's scheduler autogroup (kernel.sched_autogroup_enabled).

    Why: with autogroups, a plain `nice` only ranks processes inside one session; between
    sessions (other helpers' work on this shared machine) the autogroup's nice decides.
    Started with start_new_session, each benchmark process has its own autogroup."""
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
        return True
    except OSError:
        return False


def core_busy_seconds(core: int) -> float:
    """Non-idle time of one CPU core since boot (user+nice+system+irq+softirq+steal)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{core} "):
                v = [int(x) for x in line.split()[1:]]
                idle = v[3] + v[4]  # idle + iowait
                return (sum(v[:8]) - idle) / CLK_TCK
    return 0.0


@dataclass
class Snapshot:
    t: float
    cpu_s: float
    core_busy_s: float
    runq_wait_s: float


@dataclass
class TreeSampler:
    """Samples a process tree's CPU and RSS every `period` s on a thread (cheap: a few
    /proc reads). Children that exited keep their last CPU reading, so a short-lived worker
    still counts."""

    pid: int
    core: int
    period: float = 0.1
    peak_tree_rss: int = 0
    _last_cpu: dict[int, float] = field(default_factory=dict)
    _last_wait: dict[tuple[int, int], float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sample()

    def sample(self) -> None:
        pids = tree(self.pid)
        rss = 0
        with self._lock:
            for p in pids:
                c = cpu_seconds(p)
                if c:
                    self._last_cpu[p] = c
                for tid, w in runq_wait_seconds(p).items():
                    self._last_wait[(p, tid)] = w
                rss += rss_bytes(p)
            self.peak_tree_rss = max(self.peak_tree_rss, rss)

    def snapshot(self) -> Snapshot:
        self.sample()
        with self._lock:
            cpu = sum(self._last_cpu.values())
            wait = sum(self._last_wait.values())
        return Snapshot(time.monotonic(), cpu, core_busy_seconds(self.core), wait)

    def peak_rss(self) -> int:
        return max(self.peak_tree_rss, hwm_bytes(self.pid))

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
