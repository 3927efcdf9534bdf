"""The `ebpf` receiver: attaches the BPF programs, drains their ring buffers, feeds the
pipeline with goblock events (traces pipeline) and kernel-aggregated metrics.

Threads: waiting on the ring buffers blocks, so a poll thread owns the loaded module — it
drains (receivers/ebpf/ring.py: a whole drain decoded at once from the ring's mapping),
names (syscall names, fd targets, addresses), converts monotonic to wall clock, and hands
the events to the asyncio loop with `run_coroutine_threadsafe`, at most one batch per
`DELIVER_EVERY_S` unless `DELIVER_AT_EVENTS` came (drains that follow each other closely,
as under a storm, are coalesced).  At most
`max_pending_batches` batches holding at most `max_pending_events` events wait in the loop;
beyond that a batch is dropped and counted as lost, so a slow pipeline costs events, never
unbounded memory.  Both bounds, because a drain's size follows the ring's: under a storm a
batch holds a whole ring's worth of records, and 64 such batches were ~150 MiB.  Kernel-side losses
(ring buffer full) are read from the `lost` map.  Every loss is counted in
`goblock_events_lost` (exported as goblock_events_lost_total) and logged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import errno
import logging
import os
import socket
import struct
import threading
import time
from concurrent.futures import Future

from otel_goblock.receivers.ebpf import decode, grpcprobes, metrics
from otel_goblock.receivers.ebpf.config import Config
from otel_goblock.receivers.ebpf.fdtarget import FdResolver
from otel_goblock.receivers.ebpf.goruntime import GoRuntimeProbes, plan_for
from otel_goblock.receivers.ebpf.program import (
    CFG_NETPOLL_PEERS,
    CFG_OFFCPU_THRESHOLD_NS,
    CFG_SYSCALL_THRESHOLD_NS,
    CFG_TCP_PROBE_INTERVAL_NS,
    CFG_TCP_PROBE_MIN_AGE_NS,
    CFG_TCP_STATES_ALL,
    Program,
    ProgramOptions,
    import_bcc,
)
from otel_goblock.receivers.ebpf.ring import RingReader
from otel_goblock.receivers.ebpf.syscalls import syscall_name, takes_fd
from otel_goblock.receivers.ebpf.targets import TargetSet, parse_specs
from otel_goblock.receivers.gotrace.parser.gcbatch import fewer_young_collections

from otel_goblock.clock import MonotonicClock
from otel_goblock.component import Component, Consumers, CreateSettings, Host
from otel_goblock.doctor import (
    PROC_TRACEPOINTS,
    SCHED_TRACEPOINTS,
    SYSCALL_TRACEPOINTS,
    TCP_TRACEPOINTS,
    failure_message,
    run_doctor,
)
from otel_goblock.golang.elfimage import GoBinaryError
from otel_goblock.pdata import Event, Metrics, RequestInfo, Traces

PAGE = 4096
MAX_RECORDS_PER_DRAIN = 16384
# Drains are coalesced before they go to the pipeline: each hand-over to the loop
# (run_coroutine_threadsafe, a task, its callbacks) cost ~270 us of the loop thread on this
# VM, and at one per 20 ms poll that was ~1.4 % of a core at 5k req/s whatever the events.
# The join waits `join_delay` (2 s) for late events anyway.  A hand-over is due once this
# long passed since the last one (less a tenth, so that a drain on the default 100 ms poll
# timer, which comes a hair early or late, hands its events over at once rather than
# holding them for one more interval).
DELIVER_EVERY_S = 0.1
_DELIVER_DUE_S = 0.9 * DELIVER_EVERY_S
DELIVER_AT_EVENTS = 16384
# each ring's record: struct format and size (the layout test checks them against the C)
_RING_RECORDS: dict[str, tuple[str, int]] = {
    "syscall_events": (decode.SYSCALL_EVENT.fmt, decode.SYSCALL_EVENT.size),
    "sched_events": (decode.SCHED_EVENT.fmt, decode.SCHED_EVENT.size),
    "tcp_events": (decode.TCP_EVENT.fmt, decode.TCP_EVENT.size),
    "proc_events": (decode.PROC_EVENT.fmt, decode.PROC_EVENT.size),
    "go_events": (decode.GO_EVENT.fmt, decode.GO_EVENT.size),
    # copied whole into the ctypes struct grpcprobes decodes
    "grpc_events": (
        f"{ctypes.sizeof(grpcprobes.GrpcEvent)}s",
        ctypes.sizeof(grpcprobes.GrpcEvent),
    ),
}
# syscall_event fields read as columns (all but fd_name, sliced only when needed)
_SYSCALL_COLUMNS = ("start_ns", "end_ns", "goid", "ret", "arg0", "pid", "tid", "nr", "mode", "ino")
_FD_NAME_AT = 8 + decode.SYSCALL_EVENT.offsets()["fd_name"]  # in a ring slot (after the header)
_FD_NAME_LEN = struct.calcsize(decode.SYSCALL_EVENT.codes()["fd_name"])
# grpc events held for one metrics interval; beyond it the interval's gRPC metrics
# undercount (the events themselves still flow to the traces pipeline)
_GRPC_WINDOW_MAX = 100_000


class EbpfReceiver(Component):
    def __init__(self, settings: CreateSettings, config: Config, next_: Consumers) -> None:
        self._settings = settings
        self._config = config
        self._next = next_
        self._log: logging.Logger = settings.logger
        self._attrs = {"receiver": str(settings.id)}
        self._lost_counter = settings.meter.create_counter(
            "goblock_events_lost",
            unit="{event}",
            description="goblock events lost (kernel ring buffer full, or pipeline backlog)",
        )
        self._events_counter = settings.meter.create_counter(
            "goblock_events_received",
            unit="{event}",
            description="goblock events handed to the pipeline",
        )
        self.program: Program | None = None
        self.targets: TargetSet | None = None
        self.clock = MonotonicClock(max_age_s=30.0)
        self._fds = FdResolver()
        self._nr_info: dict[int, tuple[str, bool]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._pending = 0
        self._pending_events = 0
        self._pending_lock = threading.Lock()
        self._rings: dict[str, RingReader] = {}  # the enabled rings, by map name
        self._backlog = False  # the last drain left records in a ring (it hit the cap)
        self._outbox: list[Event] = []  # decoded, not yet handed to the pipeline
        self._last_delivery = 0.0
        self._sys_views: tuple[int, tuple[tuple[str, int, int], ...]] | None = None
        self.goprobes: GoRuntimeProbes | None = None
        # grpc events since the last metrics emission (delta histograms and counts)
        self._grpc_window: list[Event] = []
        self._grpc_window_start = 0
        self.grpcprobes: grpcprobes.GrpcProbes | None = None
        self._go_attach: collections.deque[tuple[int, str]] = collections.deque()
        self._kernel_lost: dict[str, int] = {}
        self.lost: dict[str, int] = {}  # concern → events lost so far (tests, benchmarks)
        self.delivered = 0
        self.decoded = 0
        self.disabled_reason = ""
        self._start_ns = 0
        self._resource = {"service.name": "otel-goblock", "host.name": socket.gethostname()}

    # ---- lifecycle -------------------------------------------------------------------
    def _tracepoints(self) -> list[str]:
        c = self._config
        tps = list(PROC_TRACEPOINTS)
        if c.syscalls:
            tps += SYSCALL_TRACEPOINTS
        if c.sched:
            tps += SCHED_TRACEPOINTS
        if c.tcp:
            tps += TCP_TRACEPOINTS
        return tps

    def _unavailable(self, message: str) -> None:
        if self._config.required:
            raise RuntimeError(message)
        self.disabled_reason = message
        self._log.warning("%s\n(required: false — the pipeline runs without it)", message)

    async def start(self, host: Host) -> None:
        self._loop = asyncio.get_running_loop()
        ok, lines = await asyncio.to_thread(run_doctor, self._tracepoints(), False)
        if not ok:
            self._unavailable(failure_message(lines))
            return
        try:
            self.program = await asyncio.to_thread(self._load)
        except Exception as e:
            self._unavailable(f"ebpf receiver cannot load its BPF programs: {e}")
            return
        self._start_ns = self._grpc_window_start = time.time_ns()
        self._thread = threading.Thread(
            target=self._run, name=f"ebpf-poll[{self._settings.id}]", daemon=True
        )
        self._thread.start()

    def _load(self) -> Program:
        from otel_goblock.receivers.ebpf.btf import fd_walk_offsets, task_fsbase_offset

        c = self._config
        try:
            fsbase = task_fsbase_offset()
        except Exception as e:
            self._log.warning("ebpf: no BTF offset for task_struct.thread.fsbase (%s): goid = 0", e)
            fsbase = 0
        try:
            fd_offsets = fd_walk_offsets()
        except Exception as e:
            self._log.warning("ebpf: no BTF offsets for the fd walk (%s): fd targets by /proc", e)
            fd_offsets = ()
        # with the offsets, BPF names every fd open at sys_exit (no /proc look-ups)
        self._fds = FdResolver(proc_fallback=not fd_offsets)
        prog = Program(
            ProgramOptions(
                syscalls=c.syscalls,
                sched=c.sched,
                tcp=c.tcp,
                goruntime=bool(c.go_runtime.families()),
                grpc=c.go_grpc.enabled,
                ring_pages=max(1, int(c.ring_buffer_size) // PAGE),
                fsbase_offset=fsbase,
                fd_offsets=fd_offsets,
            )
        )
        self.program = prog  # the target set's callbacks use it from here on
        try:
            prog.set_config(CFG_SYSCALL_THRESHOLD_NS, int(c.syscall_threshold * 1e9))
            prog.set_config(CFG_OFFCPU_THRESHOLD_NS, int(c.offcpu_threshold * 1e9))
            prog.set_config(CFG_TCP_PROBE_INTERVAL_NS, int(c.tcp_probe_interval * 1e9))
            prog.set_config(CFG_NETPOLL_PEERS, int(c.netpoll_peers))
            prog.set_config(CFG_TCP_PROBE_MIN_AGE_NS, int(c.tcp_probe_min_age * 1e9))
            prog.set_config(CFG_TCP_STATES_ALL, int(c.tcp_state_changes == "all"))
            families = c.go_runtime.families()
            if families:
                self.goprobes = GoRuntimeProbes(
                    prog.bpf,
                    families,
                    int(c.go_runtime.park_threshold * 1e9),
                    own_sys_enter=not c.syscalls,
                    assist_threshold_ns=int(c.go_runtime.assist_threshold * 1e9),
                )
            if c.go_grpc.enabled:
                self.grpcprobes = grpcprobes.GrpcProbes(
                    prog.bpf, flow_threshold_ns=int(c.go_grpc.flow_threshold * 1e9)
                )
            rings = [
                ("proc_events", True),
                ("grpc_events", c.go_grpc.enabled),
                ("go_events", bool(families)),
                ("syscall_events", c.syscalls),
                ("sched_events", c.sched),
                ("tcp_events", c.tcp),
            ]
            for name, enabled in rings:
                if enabled:
                    self._rings[name] = prog.open_ring(name, *_RING_RECORDS[name])
            self.targets = TargetSet(
                parse_specs(c.targets),
                prog.add_target,
                self._remove_target,
                self._log,
                on_go_binary=(self._go_binary_ready if families or c.go_grpc.enabled else None),
            )
            self.targets.scan()
        except BaseException:
            self.program = None
            prog.close()
            raise
        return prog

    def _remove_target(self, pid: int) -> None:
        if self.program is not None:
            self.program.remove_target(pid)
        if self.goprobes is not None:
            self.goprobes.detach(pid)
        if self.grpcprobes is not None:
            self.grpcprobes.detach(pid)

    def _go_binary_ready(self, pid: int, exe: str) -> None:
        """Refiner thread: read the binary (slow, cached), then let the poll thread attach:
        the BCC module is only touched by the thread that polls it."""
        if self.goprobes is not None:
            plan_for(exe)
        if self.grpcprobes is not None:
            # no grpc-go in this binary: attach() skips it quietly on the poll thread
            with contextlib.suppress(GoBinaryError):
                grpcprobes.plan_for(exe)
        self._go_attach.append((pid, exe))

    def _attach_go_targets(self) -> None:
        while self._go_attach and self.targets is not None:
            pid, exe = self._go_attach.popleft()
            if pid not in self.targets.pids:
                continue  # exited meanwhile
            if self.grpcprobes is not None:
                try:
                    self.grpcprobes.attach(pid, exe)
                except GoBinaryError:
                    pass  # the binary does not link grpc-go
                except Exception as e:
                    self._log.warning("ebpf: pid %d: grpc probes not attached: %s", pid, e)
            if self.goprobes is None:
                continue
            try:
                plan = self.goprobes.attach(pid, exe)
                self._log.info(
                    "ebpf: pid %d: Go runtime probes attached (%s, families %s)",
                    pid,
                    plan.go_version,
                    ",".join(sorted(self.goprobes.families)),
                )
            except Exception as e:  # the target may have exited, or its binary is odd
                self._log.warning("ebpf: pid %d: Go runtime probes not attached: %s", pid, e)

    def set_thresholds(self, syscall_s: float | None = None, offcpu_s: float | None = None) -> None:
        """Change episode thresholds while running (they live in a BPF map, no recompile)."""
        if self.program is None:
            return
        if syscall_s is not None:
            self.program.set_config(CFG_SYSCALL_THRESHOLD_NS, int(syscall_s * 1e9))
        if offcpu_s is not None:
            self.program.set_config(CFG_OFFCPU_THRESHOLD_NS, int(offcpu_s * 1e9))

    def _take(self, name: str) -> list[tuple]:
        """Up to MAX_RECORDS_PER_DRAIN records of one ring (none when it is off): bounded,
        so a storm cannot hold the poll thread or grow memory; the rest waits in the ring
        for the next drain."""
        ring = self._rings.get(name)
        if ring is None:
            return []
        recs = ring.drain(MAX_RECORDS_PER_DRAIN)
        if len(recs) == MAX_RECORDS_PER_DRAIN:
            self._backlog = True
        return recs

    async def shutdown(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 10.0)
            self._thread = None
        if self.targets is not None:
            self.targets.close()
        if self.program is not None:
            prog, self.program = self.program, None
            goprobes, self.goprobes = self.goprobes, None
            if goprobes is not None:
                await asyncio.to_thread(goprobes.close)
            grpc, self.grpcprobes = self.grpcprobes, None
            if grpc is not None:
                await asyncio.to_thread(grpc.close)
            await asyncio.to_thread(prog.close)

    # ---- poll thread -----------------------------------------------------------------
    def _run(self) -> None:
        assert self.program is not None
        c = self._config
        poll_ms = max(1, int(c.poll_interval * 1000))
        next_lost = next_reap = time.monotonic()
        next_metrics = time.monotonic() + c.metrics_interval
        while not self._stop.is_set():
            try:
                if self._go_attach:
                    self._attach_go_targets()
                # a ring left with records (a drain is capped) is drained again at once:
                # wakeups come only once a quarter of a ring came in, too seldom to keep
                # up with a storm on their own
                if not self._backlog:
                    self.program.wait(poll_ms)
                self._backlog = False
                self._drain()
                now = time.monotonic()
                if now >= next_lost:
                    self._check_kernel_lost()
                    next_lost = now + 1.0
                if now >= next_reap and self.targets is not None:
                    self.targets.reap()
                    if self.goprobes is not None:
                        self.goprobes.reap_idle()
                    if self.grpcprobes is not None:
                        self.grpcprobes.reap_idle()
                    next_reap = now + 5.0
                if now >= next_metrics:
                    self._emit_metrics()
                    next_metrics = now + c.metrics_interval
            except Exception:
                self._log.exception("ebpf: poll loop error (continuing)")
                time.sleep(0.05)
        # final drain and metrics so a shutdown does not lose what the kernel already has
        try:
            self._drain()
            self._flush(force=True)
            self._check_kernel_lost()
            self._emit_metrics()
        except Exception:
            self._log.exception("ebpf: final drain failed")

    def _drain(self) -> None:
        # execs first (a new target's records may follow in this drain), exits last (the
        # fd cache of an exited target must still serve its final records)
        proc = self._take("proc_events")
        if proc:
            self._handle_proc([r for r in proc if r[3] == decode.PROC_EXEC])
        # a drain makes up to tens of thousands of Events, all alive until delivered: with
        # the default young-generation threshold (700) the collector walked the batch
        # being built again and again (~40 % of a storm's decode CPU in a process without
        # the CLI's gc settings); one larger collection afterwards walks it once
        with fewer_young_collections():
            events = self._decode_rings()
        if events:
            self.decoded += len(events)
            self._outbox += events
        self._flush()
        if proc:
            self._handle_proc([r for r in proc if r[3] == decode.PROC_EXIT])

    def _flush(self, force: bool = False) -> None:
        """Hand the drained events to the pipeline unless a hand-over went out less than
        DELIVER_EVERY_S ago (then they wait for a later drain, coalesced with its events)
        or enough came to go at once."""
        out = self._outbox
        if not out:
            return
        now = time.monotonic()
        if force or len(out) >= DELIVER_AT_EVENTS or now - self._last_delivery >= _DELIVER_DUE_S:
            self._outbox = []
            self._last_delivery = now
            self._deliver(out)

    def _decode_rings(self) -> list[Event]:
        events: list[Event] = []
        off = self.clock.offset_ns
        ring = self._rings.get("syscall_events")
        if ring is not None:
            region, n = ring.drain_region(MAX_RECORDS_PER_DRAIN)
            if n == MAX_RECORDS_PER_DRAIN:
                self._backlog = True
            if n:
                self._fds.new_batch()
                events += self._syscall_events(region, n, ring.stride, off)
        recs = self._take("sched_events")
        if recs:
            events += decode.sched_events(recs, off)
        recs = self._take("grpc_events")
        if recs:
            decode_grpc = grpcprobes.decode_record
            grpc = grpcprobes.grpc_events([decode_grpc(r[0]) for r in recs], self.clock)
            events += grpc
            window = self._grpc_window
            if len(window) < _GRPC_WINDOW_MAX:
                window.extend(e for e in grpc if e.attrs.get("type") in grpcprobes.METRIC_TYPES)
        recs = self._take("go_events")
        if recs:
            events += self._go_events(recs, off)
        recs = self._take("tcp_events")
        if recs:
            events += decode.tcp_events(recs, off)
        return events

    def _syscall_events(self, region: bytes, n: int, stride: int, off: int) -> list[Event]:
        """The hot loop of a storm (every syscall event goes through it): fields come as
        columns (decode.columns, no tuple per record), per-nr naming is looked up once per
        nr, the fd name bytes are sliced only for fd-taking syscalls."""
        views = self._sys_views
        if views is None or views[0] != stride:
            views = self._sys_views = (
                stride,
                decode.column_views(decode.SYSCALL_EVENT, stride, _SYSCALL_COLUMNS),
            )
        cols = decode.columns_of(region, views[1])
        out: list[Event] = []
        append = out.append
        resolve = self._fds.resolve
        info = self._nr_info
        rows = zip(range(_FD_NAME_AT, _FD_NAME_AT + n * stride, stride), *cols, strict=True)
        for at, start, end, goid, ret, arg0, pid, tid, nr, mode, ino in rows:
            ni = info.get(nr)
            if ni is None:
                ni = info[nr] = (syscall_name(nr), takes_fd(nr))
            if ni[1]:
                fd = arg0 & 0xFFFFFFFF
                if fd >= 1 << 31:
                    fd -= 1 << 32
                attrs = {
                    "nr": nr,
                    "name": ni[0],
                    "ret": ret,
                    "fd": fd,
                    "fd_target": (
                        resolve(pid, fd, mode, ino, region[at : at + _FD_NAME_LEN])
                        if fd >= 0
                        else ""
                    ),
                }
            else:
                attrs = {"nr": nr, "name": ni[0], "ret": ret}
            append(Event("syscall", pid, tid, goid, start + off, end + off, attrs, "ebpf"))
        return out

    def _go_events(self, recs: list[tuple], off: int) -> list[Event]:
        assert self.goprobes is not None
        out: list[Event] = []
        plans: dict[int, tuple[dict[int, str], dict[int, str]]] = {}
        for rec in recs:
            pid = rec[4]
            names = plans.get(pid)
            if names is None:
                plan = self.goprobes.plan(pid)
                names = plans[pid] = (plan.wait_reasons, plan.stw_reasons) if plan else ({}, {})
            ev = decode.go_event(rec, off, names[0], names[1])
            if ev is not None:
                out.append(ev)
        return out

    def _handle_proc(self, recs: list[tuple]) -> None:
        if self.targets is None:
            return
        for _ts, pid, _tid, kind, comm, filename in recs:
            if kind == decode.PROC_EXEC:
                self.targets.consider(
                    pid,
                    comm.split(b"\0", 1)[0].decode(errors="replace"),
                    filename.split(b"\0", 1)[0].decode(errors="replace"),
                )
            elif kind == decode.PROC_EXIT:
                self.targets.detach(pid)
                self._fds.forget_pid(pid)

    def _deliver(self, events: list[Event]) -> None:
        consumer = self._next.traces
        if consumer is None or self._loop is None:
            return
        n = len(events)
        c = self._config
        with self._pending_lock:
            if self._pending >= c.max_pending_batches or (
                self._pending_events and self._pending_events + n > c.max_pending_events
            ):
                self._count_lost("pipeline", n)
                return
            self._pending += 1
            self._pending_events += n
        traces = Traces(raw=b"", span_count=0, events=events, info=RequestInfo(transport="ebpf"))
        try:
            fut = asyncio.run_coroutine_threadsafe(consumer.consume_traces(traces), self._loop)
        except RuntimeError:  # loop closed during shutdown
            with self._pending_lock:
                self._pending -= 1
                self._pending_events -= n
            self._count_lost("pipeline", n)
            return

        def done(f: Future) -> None:
            with self._pending_lock:
                self._pending -= 1
                self._pending_events -= n
            err = f.exception() if not f.cancelled() else None
            if err is not None or f.cancelled():
                self._count_lost("refused", n)
                self._log.warning("ebpf: pipeline refused %d events: %s", n, err)
            else:
                self.delivered += n
                self._events_counter.add(n, self._attrs)

        fut.add_done_callback(done)

    def _count_lost(self, concern: str, n: int) -> None:
        if n <= 0:
            return
        self.lost[concern] = self.lost.get(concern, 0) + n
        self._lost_counter.add(n, {**self._attrs, "concern": concern})
        self._log.warning("ebpf: lost %d %s events (total %d)", n, concern, self.lost[concern])

    def _check_kernel_lost(self) -> None:
        assert self.program is not None
        for concern, total in self.program.lost_counts().items():
            delta = total - self._kernel_lost.get(concern, 0)
            if delta > 0:
                self._kernel_lost[concern] = total
                self._count_lost(concern, delta)

    # ---- metrics -----------------------------------------------------------------------
    def _percpu_totals(self, name: str) -> list[int]:
        """Every entry of a per-CPU u64 array, summed over CPUs: one BPF_MAP_LOOKUP_BATCH
        (a per-key read would be a syscall per entry: 16k for the syscall histogram)."""
        assert self.program is not None
        t = self.program.table(name)
        n, ncpu = int(t.max_entries), int(t.total_cpu)
        keys = (ctypes.c_uint32 * n)()
        values = (ctypes.c_uint64 * (n * ncpu))()
        count, token = ctypes.c_uint32(n), ctypes.c_uint32(0)
        lib = import_bcc().libbcc.lib
        res = lib.bpf_lookup_batch(
            t.map_fd, None, ctypes.byref(token), keys, values, ctypes.byref(count)
        )
        if (res == 0 or ctypes.get_errno() == errno.ENOENT) and count.value == n:
            return metrics.sum_cpus(values, ncpu)
        # no batch lookup on this kernel (< 5.9 for arrays): entry by entry
        return [sum(int(x) for x in t.getvalue(t.Key(i))) for i in range(n)]

    def read_aggregates(self) -> dict[str, dict]:
        """One read of the kernel's histogram and counter maps (histograms: per-CPU
        arrays, summed over CPUs)."""
        assert self.program is not None
        c = self._config
        out: dict[str, dict] = {
            "syscall_hist": {},
            "syscall_sum": {},
            "sched_hist": {},
            "tcp_counts": {},
            "tcp_states": {},
        }
        if c.syscalls:
            out["syscall_hist"], out["syscall_sum"] = metrics.syscall_aggregates(
                self._percpu_totals("syscall_hist"), self._percpu_totals("syscall_sum")
            )
        if c.sched:
            out["sched_hist"] = metrics.sched_aggregates(self._percpu_totals("sched_hist"))
        if c.tcp:
            out["tcp_counts"] = {
                (k.type, bytes(k.daddr), k.family, k.dport): v.value
                for k, v in self.program.table("tcp_counts").items()
            }
            out["tcp_states"] = metrics.state_aggregates(self._percpu_totals("tcp_state_counts"))
        return out

    def build_metrics(self) -> Metrics:
        agg = self.read_aggregates()
        req = metrics.build(
            **agg,
            syscall_name=syscall_name,
            start_ns=self._start_ns,
            now_ns=time.time_ns(),
            resource_attrs={**self._resource, "goblock.receiver": str(self._settings.id)},
        )
        if self._grpc_window:
            now = time.time_ns()
            window, self._grpc_window = self._grpc_window, []
            resource = {**self._resource, "goblock.receiver": str(self._settings.id)}
            grpc = grpcprobes.grpc_metrics(
                window,
                lambda pid: {**resource, "process.pid": pid},
                start_ns=self._grpc_window_start,
                time_ns=now,
            )
            self._grpc_window_start = now
            req.resource_metrics.extend(grpc.resource_metrics)
        return Metrics(message=req)

    def _emit_metrics(self) -> None:
        consumer = self._next.metrics
        if consumer is None or self._loop is None or self.program is None:
            return
        m = self.build_metrics()
        if m.data_point_count == 0:
            return
        try:
            fut = asyncio.run_coroutine_threadsafe(consumer.consume_metrics(m), self._loop)
        except RuntimeError:
            return
        fut.add_done_callback(
            lambda f: (
                f.cancelled()
                or f.exception() is None
                or self._log.warning("ebpf: metrics refused: %s", f.exception())
            )
        )


def pid_alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")
