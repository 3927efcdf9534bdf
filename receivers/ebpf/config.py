"""Config of the `ebpf` receiver: which processes, which concerns, which thresholds."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from otel_goblock.config import ByteSize, Duration

TCP_STATE_CHANGES = ("unusual", "all")


@dataclass
class Target:
    """One way to name target processes; exactly one of the three."""

    pid: int | None = None
    exe: str | None = None  # executable path (or its basename)
    comm: str | None = None  # regex over the task name (/proc/<pid>/comm)

    def validate(self) -> list[str]:
        given = [k for k in ("pid", "exe", "comm") if getattr(self, k) is not None]
        if len(given) != 1:
            return [f": expected exactly one of pid, exe, comm, got {given or 'none'}"]
        if self.pid is not None and self.pid <= 0:
            return [f"pid: expected a positive process id, got {self.pid}"]
        if self.comm is not None:
            try:
                re.compile(self.comm)
            except re.error as e:
                return [f"comm: expected a regular expression, got {self.comm!r} ({e})"]
        return []


@dataclass
class GoRuntime:
    """Go runtime uprobes (issue 5). Each family can be turned off; see the README for
    what each costs per hit and per request."""

    parks: bool = True  # gopark/ready/goexit1: goroutine parks with their wait reason
    gc: bool = True  # gcStart, stop-the-world, mark assist
    lineage: bool = True  # newproc1: parent → child goroutines
    span_markers: bool = True  # OTel SDK recordingSpan.End: span ↔ goroutine
    # parks shorter than this are summed in the kernel per (pid, reason), not emitted
    park_threshold: Duration = field(default_factory=lambda: Duration(0.001))
    # mark assists are short and many while a GC marks; most assist time is in pieces of
    # 0.05-1 ms, so they have a threshold of their own
    assist_threshold: Duration = field(default_factory=lambda: Duration(50e-6))

    def families(self) -> set[str]:
        return {f for f in ("parks", "gc", "lineage", "span_markers") if getattr(self, f)}

    def validate(self) -> list[str]:
        return [
            f"{k}: expected a duration >= 0, got {getattr(self, k)}"
            for k in ("park_threshold", "assist_threshold")
            if getattr(self, k) < 0
        ]


@dataclass
class GoGrpc:
    """grpc-go transport uprobes (issue 7; receivers/ebpf/GRPC.md): flow-control stalls,
    WINDOW_UPDATEs, pings, GOAWAYs, keepalive closes. Attached only to binaries that link
    grpc-go."""

    enabled: bool = True
    flow_threshold: Duration = field(default_factory=lambda: Duration(0.001))

    def validate(self) -> list[str]:
        if self.flow_threshold < 0:
            return [f"flow_threshold: expected a duration >= 0, got {self.flow_threshold}"]
        return []


@dataclass
class Config:
    targets: list[Target] = field(default_factory=list)
    syscalls: bool = True
    sched: bool = True
    tcp: bool = True
    go_runtime: GoRuntime = field(default_factory=GoRuntime)
    go_grpc: GoGrpc = field(default_factory=GoGrpc)
    syscall_threshold: Duration = field(default_factory=lambda: Duration(0.001))
    offcpu_threshold: Duration = field(default_factory=lambda: Duration(0.001))
    tcp_probe_interval: Duration = field(default_factory=lambda: Duration(1.0))
    # a socket's first probe sample comes once it has been owned this long (at most
    # tcp_probe_interval): short connections emit none, zero windows always
    tcp_probe_min_age: Duration = field(default_factory=lambda: Duration(0.1))
    # which TCP state changes leave the kernel as events: "unusual" (a failed connect, an
    # abort: the ones that say something) or "all". Every one is counted in the
    # goblock.tcp.state_changes metric either way.
    tcp_state_changes: str = "unusual"
    # Go targets: the socket read/write that returns EAGAIN (the syscall right before a
    # netpoll park, the only record of which peer the park waits on), emitted at the
    # goroutine's next syscall when the wait lasted at least syscall_threshold. Off:
    # netpoll waits keep their cause and duration but lose the peer address.
    netpoll_peers: bool = True
    # When false, a machine that cannot run BPF logs the reason once and the pipeline runs
    # without this receiver; when true the collector fails at start with the doctor's text.
    required: bool = True
    ring_buffer_size: ByteSize = field(default_factory=lambda: ByteSize(1 << 20))
    # records are mostly submitted without waking the poll thread (a wakeup once a quarter
    # of a ring came in over all CPUs), so this is the latency of most events.  100 ms, not
    # 20: each drain has a fixed cost (every ring looked at, the decoder's code and data
    # cold again after the app ran), ~40 % of the agent's CPU at 50 drains/s on the demo at
    # 2.5k req/s; the join holds spans join_delay (2 s) for their events anyway
    poll_interval: Duration = field(default_factory=lambda: Duration(0.1))
    metrics_interval: Duration = field(default_factory=lambda: Duration(10.0))
    # batches handed to the pipeline but not yet consumed; beyond this, batches are dropped
    # and counted as lost (memory stays bounded when the pipeline is slower than the kernel)
    max_pending_batches: int = 64
    # and at most this many events in them (a batch is a whole drain: up to a ring's worth)
    max_pending_events: int = 100_000

    def validate(self) -> list[str]:
        problems = []
        if not self.targets:
            problems.append("targets: expected at least one {pid | exe | comm}, got none")
        if not (self.syscalls or self.sched or self.tcp or self.go_runtime.families()):
            problems.append(
                "syscalls/sched/tcp/go_runtime: expected at least one enabled, got all false"
            )
        size = int(self.ring_buffer_size)
        if size < 4096 or size & (size - 1):
            problems.append(f"ring_buffer_size: expected a power of two ≥ 4096 bytes, got {size}")
        if self.poll_interval <= 0 or self.poll_interval > 1:
            problems.append(f"poll_interval: expected between 0 and 1s, got {self.poll_interval}")
        if self.metrics_interval < 0.1:
            problems.append(f"metrics_interval: expected ≥ 100ms, got {self.metrics_interval}")
        if self.tcp_state_changes not in TCP_STATE_CHANGES:
            problems.append(
                f"tcp_state_changes: expected one of {', '.join(TCP_STATE_CHANGES)},"
                f" got {self.tcp_state_changes!r}"
            )
        if self.max_pending_batches < 1:
            problems.append(f"max_pending_batches: expected ≥ 1, got {self.max_pending_batches}")
        if self.max_pending_events < 1:
            problems.append(f"max_pending_events: expected ≥ 1, got {self.max_pending_events}")
        return problems
