"""goblock processor throughput on one core: pass-through vs join, side by side.

Spans arrive as serialized OTLP requests (100 spans each, one process); each joined span
has ~10 events (marker, syscalls with fd targets, parks, run-queue and off-CPU waits,
GC). Reports spans/s and events/s for: pass-through with nothing observed, pass-through
of an unobserved process while another is observed (wire scan only), event ingest, and
the join (route + parse + breakdown + attributes + episode spans + serialize).

    .venv/bin/python benchmarks/goblock_join.py [--spans 50000]
    .venv/bin/python benchmarks/goblock_join.py --rate 5000 --seconds 20   # live mode

Live mode runs the processor in a process of its own (default config: join_delay 2s,
retention 30s, max_events 1M; `--serve`), fed over a unix socket by this process at a
fixed rate: events pickled as field tuples (their decode into `Event`s stands in for the
ebpf receiver's), spans as serialized OTLP requests. It reports the latency added (when
a request was due to be sent → handed on by goblock) p50/p99, the pipeline process's
CPU (from /proc, split into event decode, ingest, routing and the rest) and its own RSS
(VmRSS/VmHWM, without the load generator's prebuilt inputs), the worst latency per
second of the feed and the CPU of its second half (the steady state: max_events reached,
the unjoined pass at work). `--profile FILE` runs the pipeline process under py-spy (raw
format; benchmarks/pyspy_summary.py reads it). `--tree DIR` runs another checkout's code
(e.g. `git worktree add /tmp/wt-old HEAD~3`): run old and new alternately to compare.

The stand-in decode is about what the ebpf receiver pays: it too builds one `Event` with
an attribute dict per record (receivers/ebpf/receiver.py, decode.py), in a thread of the
same process (its decode ceiling, ~0.8 us per event, is above the stand-in's ~0.7 us).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import pickle
import resource
import struct
import subprocess
import sys
import tempfile
import time
from operator import attrgetter
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def use_tree(tree: str) -> None:
    """Import otel_goblock (processors, receivers) from another checkout of the repo, e.g.
    a git worktree of older code: the editable install maps the package names to folders,
    remapped here before the first import, so old and new code run the same benchmark."""
    import __editable___otel_goblock_0_1_0_finder as finder  # type: ignore[import-not-found]

    for name, folder in list(finder.MAPPING.items()):
        finder.MAPPING[name] = os.path.join(tree, os.path.relpath(folder, REPO))


if "--tree" in sys.argv:
    use_tree(os.path.abspath(sys.argv[sys.argv.index("--tree") + 1]))

from otel_goblock.processors.goblock.config import Config  # noqa: E402
from otel_goblock.processors.goblock.processor import GoblockProcessor  # noqa: E402

from otel_goblock.component import ComponentID, CreateSettings  # noqa: E402
from otel_goblock.config import decode  # noqa: E402
from otel_goblock.pdata import Event, Traces, count_spans  # noqa: E402
from otel_goblock.telemetry import Telemetry  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import procstat  # noqa: E402

MS = 1_000_000
PID, OTHER = 4242, 5151
PER_REQUEST = 100
# --light: 5 events per span (a read, its netpoll park, a run-queue wait, a lock park,
# the span marker) instead of 10
KEEP: tuple[int, ...] | None = None


class Sink:
    def __init__(self) -> None:
        self.spans = 0
        self.bytes = 0

    async def consume_traces(self, data: Traces) -> None:
        self.spans += data.span_count
        self.bytes += len(data.serialized())  # the exporter would serialize


def build(
    n: int, pid: int, t0: int, spacing_ns: int = 2 * MS // 10
) -> tuple[list[bytes], list[list[Event]]]:
    """n spans starting `spacing_ns` apart from t0 (default 5k/s of app time), each 20 ms
    long, with their events inside them (a span and its events share the same times)."""
    reqs, evs = [], []
    for r in range(n // PER_REQUEST):
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.append(
            KeyValue(key="service.name", value=AnyValue(string_value="demo"))
        )
        rs.resource.attributes.append(KeyValue(key="process.pid", value=AnyValue(int_value=pid)))
        ss = rs.scope_spans.add()
        batch: list[Event] = []
        for i in range(PER_REQUEST):
            k = r * PER_REQUEST + i
            goid = 1000 + k
            tid = 100 + k % 500  # a thread runs one of these goroutines at a time
            start = t0 + k * spacing_ns  # overlapping spans
            end = start + 20 * MS
            s = ss.spans.add()
            s.trace_id = (k + 1).to_bytes(16, "big")
            s.span_id = (k + 1).to_bytes(8, "big")
            s.name = "GET /net"
            s.kind = 2
            s.start_time_unix_nano, s.end_time_unix_nano = start, end
            for key, val in (
                ("http.route", "/net"),
                ("http.method", "GET"),
                ("http.status_code", 200),
                ("net.peer.port", 5000 + k % 100),
            ):
                kv = s.attributes.add()
                kv.key = key
                if isinstance(val, int):
                    kv.value.int_value = val
                else:
                    kv.value.string_value = val
            target = f"tcp 127.0.0.1:{40000 + k % 1000}->10.0.0.5:5432"
            span_events = [
                Event("runqueue", pid, tid, 0, start, start + MS // 5, {"after": "wakeup"}, "ebpf"),
                Event(
                    "syscall",
                    pid,
                    tid,
                    goid,
                    start + MS,
                    start + MS + 20_000,
                    {"nr": 1, "name": "write", "fd": 7, "fd_target": target},
                    "ebpf",
                ),
                Event(
                    "syscall",
                    pid,
                    tid,
                    goid,
                    start + MS + 30_000,
                    start + MS + 40_000,
                    {"nr": 0, "name": "read", "fd": 7, "fd_target": target},
                    "ebpf",
                ),
                Event(
                    "park",
                    pid,
                    tid,
                    goid,
                    start + MS + 50_000,
                    start + 15 * MS,
                    {"reason": "IO wait"},
                    "ebpf",
                ),
                Event(
                    "offcpu",
                    pid,
                    tid,
                    0,
                    start + MS + 60_000,
                    start + 14 * MS,
                    {"state": "blocked", "runq_ns": 0},
                    "ebpf",
                ),
                Event(
                    "runqueue",
                    pid,
                    tid,
                    goid,
                    start + 15 * MS,
                    start + 15 * MS + 300_000,
                    {"after": "wakeup"},
                    "ebpf",
                ),
                Event(
                    "syscall",
                    pid,
                    tid,
                    goid,
                    start + 16 * MS,
                    start + 16 * MS + 10_000,
                    {"nr": 0, "name": "read", "fd": 7, "fd_target": target},
                    "ebpf",
                ),
                Event(
                    "park",
                    pid,
                    tid,
                    goid,
                    start + 17 * MS,
                    start + 18 * MS,
                    {"reason": "sync.Mutex.Lock"},
                    "ebpf",
                ),
                Event(
                    "gc_assist",
                    pid,
                    tid,
                    goid,
                    start + 18 * MS,
                    start + 18 * MS + 200_000,
                    {},
                    "ebpf",
                ),
                Event(
                    "span_marker",
                    pid,
                    tid,
                    goid,
                    end,
                    end,
                    {"trace_id": s.trace_id.hex(), "span_id": s.span_id.hex()},
                    "ebpf",
                ),
            ]
            batch += span_events if KEEP is None else [span_events[i] for i in KEEP]
        reqs.append(req.SerializeToString())
        evs.append(batch)
    return reqs, evs


def make(options: dict) -> tuple[GoblockProcessor, Sink]:
    tel, sink = Telemetry(), Sink()
    cfg = decode(
        Config,
        {
            "join_delay": "0s",
            "retention": "10m",
            "unjoined_after": "5m",
            "max_events": 10_000_000,
            **options,
        },
    )
    st = CreateSettings(
        id=ComponentID("goblock"),
        kind="processor",
        logger=logging.getLogger("bench"),
        meter=tel.meter("goblock"),
        signals=frozenset({"traces"}),
    )
    return GoblockProcessor(st, cfg, sink), sink


async def main(n: int) -> None:
    t0 = time.time_ns() - 60_000 * MS
    reqs, evs = build(n, PID, t0)
    other_reqs, _ = build(n, OTHER, t0)
    gc.collect()
    gc.freeze()  # the prebuilt inputs are not the processor's: keep the GC off them
    n_events = sum(len(b) for b in evs)
    rows = []

    proc, sink = make({})
    t = time.process_time()
    for raw in other_reqs:
        await proc.consume_traces(Traces(raw=raw, span_count=PER_REQUEST))
    dt = time.process_time() - t
    rows.append(("pass-through, nothing observed", n / dt, 0.0))

    proc, sink = make({})
    await proc.consume_traces(Traces(raw=b"", span_count=0, events=evs[0][:1]))
    t = time.process_time()
    for raw in other_reqs:
        await proc.consume_traces(Traces(raw=raw, span_count=PER_REQUEST))
    dt = time.process_time() - t
    rows.append(("pass-through, unobserved pid (wire scan)", n / dt, 0.0))

    proc, sink = make({})
    rss0 = rss_mib()
    t = time.process_time()
    for b in evs:
        await proc.consume_traces(Traces(raw=b"", span_count=0, events=b))
    dt_ingest = time.process_time() - t
    timeline_mib = rss_mib() - rss0
    rows.append(
        (f"event ingest only ({n_events // n} events/span)", n / dt_ingest, n_events / dt_ingest)
    )

    t = time.process_time()
    for raw in reqs:
        await proc.consume_traces(Traces(raw=raw, span_count=PER_REQUEST))
    dt_join = time.process_time() - t
    rows.append(("join only (timeline populated)", n / dt_join, 0.0))
    rows.append(
        ("ingest + join, per span", n / (dt_ingest + dt_join), n_events / (dt_ingest + dt_join))
    )
    out_spans = sink.spans
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(
        f"spans={n} events={n_events} ({n_events / n:.0f}/span); rates are per CPU-second "
        "of this process (other load on the host does not count), python protobuf upb"
    )
    print(f"{'stage':<44} {'spans/s':>10} {'events/s':>11}  vs pass-through")
    base = rows[1][1]
    for name, sps, eps in rows:
        print(f"{name:<44} {sps:>10,.0f} {eps:>11,.0f}  {sps / base:>6.3f}x")
    print(
        f"spans out of the join: {out_spans} ({out_spans / n:.1f} per app span incl. "
        f"episode children); max RSS {rss:.0f} MiB (incl. the benchmark's own inputs); "
        f"the timelines of {n_events:,} events took {timeline_mib:.0f} MiB "
        f"({timeline_mib * 2**20 / n_events:.0f} B/event)"
    )


class LatencySink:
    """The processor's next consumer in the pipeline process: stamps when each request
    leaves (the exporter's serialize is paid here, as in a pipeline)."""

    def __init__(self, due: dict[bytes, float]) -> None:
        self.due = due
        self.latencies: list[float] = []
        self.when: list[tuple[float, float]] = []  # (when due, latency)
        self.spans = 0

    async def consume_traces(self, data: Traces) -> None:
        self.spans += data.span_count
        if data.has_raw():  # sent on as bytes: read the id off the wire, as no exporter parses
            first = _first_span_id(data.serialized())
        else:
            first = data.message().resource_spans[0].scope_spans[0].spans[0].span_id
        data.serialized()
        t = self.due.pop(first, None)
        if t is not None:
            lat = time.monotonic() - t
            self.latencies.append(lat)
            self.when.append((t, lat))


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _first_span_id(raw: bytes) -> bytes:
    """The span id of a request's first span, from its bytes (the benchmark's latency
    bookkeeping: parsing the request for it would charge the pipeline a parse)."""
    pos, end = 0, len(raw)
    for tag in (0x0A, 0x12, 0x12):  # resource_spans → scope_spans → spans
        while True:
            key, pos = read_varint(raw, pos)
            n, pos = read_varint(raw, pos) if key & 7 == 2 else (0, pos)
            if key == tag:
                end = pos + n
                break
            if key & 7 != 2:
                raise ValueError("unexpected field in a benchmark request")
            pos += n
    while pos < end:
        key, pos = read_varint(raw, pos)
        if key & 7 == 2:
            n, pos = read_varint(raw, pos)
            if key == 0x12:  # Span.span_id
                return raw[pos : pos + n]
            pos += n
        else:
            raise ValueError("unexpected field in a benchmark span")
    return b""


def rss_mib(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# live mode: the load generator and the pipeline are separate processes, talking over a
# unix socket in frames: kind (1 events, 2 spans), the time the frame was due (monotonic:
# CLOCK_MONOTONIC is the same clock in both processes), payload length, payload
_FRAME = struct.Struct("<Bd8sI")
_EVENTS, _SPANS, _END = 1, 2, 3


async def serve(path: str, profile: str | None) -> None:
    """The pipeline process: a goblock processor (default config: join_delay 2s,
    retention 30s, max_events 1M) fed from the socket; events arrive pickled (their
    decode stands in for the ebpf receiver's), spans as serialized OTLP requests."""
    due: dict[bytes, float] = {}
    sink = LatencySink(due)
    tel = Telemetry()
    st = CreateSettings(
        id=ComponentID("goblock"),
        kind="processor",
        logger=logging.getLogger("bench"),
        meter=tel.meter("goblock"),
        signals=frozenset({"traces"}),
    )
    proc = GoblockProcessor(st, decode(Config, {}), sink)
    await proc.start(None)  # type: ignore[arg-type]
    # the longest single calls of the processor's bulk steps (what a stall is made of)
    longest: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                d = time.perf_counter() - t
                if d > longest.get(name, 0.0):
                    longest[name] = d

        return wrapper

    tls = proc.timelines
    tls.drop_oldest = timed("drop_oldest", tls.drop_oldest)  # type: ignore[method-assign]
    tls.expire = timed("expire", tls.expire)  # type: ignore[method-assign]
    proc._enrich = timed("enrich (one request)", proc._enrich)  # type: ignore[method-assign]
    proc.ingest = timed("ingest (one batch)", proc.ingest)  # type: ignore[method-assign]
    # what `otel-goblock run` does once started (otel_goblock/cli.py)
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    done = asyncio.Event()
    stats: dict[str, float] = {"decode_s": 0.0, "ingest_s": 0.0, "route_s": 0.0}
    gc_times: list[tuple[int, float]] = []  # the cyclic GC's pauses: (generation, s)
    gc_t0 = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_t0[0] = time.perf_counter()
        else:
            gc_times.append((info["generation"], time.perf_counter() - gc_t0[0]))

    gc.callbacks.append(on_gc)
    rss_peak = [0.0]

    lags: list[tuple[float, float]] = []  # (loop stall s, when: s since start)
    t_start = time.monotonic()

    async def sample_rss() -> None:
        while not done.is_set():
            rss_peak[0] = max(rss_peak[0], rss_mib())
            t = time.monotonic()
            await asyncio.sleep(0.05)
            lag = time.monotonic() - t - 0.05
            if lag > 0.05:
                lags.append((lag, t - t_start))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pc = time.process_time
        while True:
            kind, t_due, first, n = _FRAME.unpack(await reader.readexactly(_FRAME.size))
            if kind == _END:
                break
            payload = await reader.readexactly(n)
            if kind == _EVENTS:
                t = pc()
                events = [Event(*f) for f in pickle.loads(payload)]
                t1 = pc()
                await proc.consume_traces(Traces(raw=b"", span_count=0, events=events))
                stats["decode_s"] += t1 - t
                stats["ingest_s"] += pc() - t1
            else:
                due[first] = t_due
                t = pc()
                await proc.consume_traces(Traces(raw=payload, span_count=PER_REQUEST))
                stats["route_s"] += pc() - t
        t_end = time.monotonic() + 10
        while due and time.monotonic() < t_end:
            await asyncio.sleep(0.05)
        cpu = time.process_time()
        lat = sorted(sink.latencies)
        # the worst latency per second of the feed: a tail from one stall or a backlog
        t0 = min((t for t, _ in sink.when), default=0.0)
        per_s: dict[int, float] = {}
        for t, x in sink.when:
            k = int(t - t0)
            per_s[k] = max(per_s.get(k, 0.0), x)
        out = {
            **stats,
            "cpu_s": cpu,
            "rss_mib": rss_mib(),
            "rss_peak_mib": max(rss_peak[0], rss_mib()),
            "held": proc.timelines.total,
            "spans_out": sink.spans,
            "lat": lat,
            "max_per_s": [per_s[k] for k in sorted(per_s)],
            "missing": len(due),
            "gc2": gc_times,
            "lags": sorted(lags, reverse=True)[:5],
            "longest": longest,
            "runq_wait_s": sum(procstat.runq_wait_seconds(os.getpid()).values()),
        }
        writer.write(json.dumps(out).encode())
        await writer.drain()
        writer.close()
        done.set()

    server = await asyncio.start_unix_server(handle, path)
    sampler = asyncio.create_task(sample_rss())
    async with server:
        await done.wait()
    sampler.cancel()
    await proc.shutdown()


async def live(rate: int, seconds: float, profile: str | None, tree: str | None) -> None:
    n = int(rate * seconds) // PER_REQUEST * PER_REQUEST
    # spans (and their events) happen "now" as they are fed: one request's 100 spans over
    # its feeding interval. Building the inputs takes a while: time a small build, start
    # the spans after the whole build would be done, and wait for that moment.
    interval = PER_REQUEST / rate
    spacing = int(interval * 1e9) // PER_REQUEST
    t = time.monotonic()
    build(10 * PER_REQUEST, PID, 0, spacing)
    estimate = (time.monotonic() - t) * n / (10 * PER_REQUEST) * 1.6 + 2.0
    t_base = time.time_ns() + int(estimate * 1e9)
    reqs, evs = build(n, PID, t_base, spacing)
    fields = attrgetter("kind", "pid", "tid", "goid", "start_ns", "end_ns", "attrs", "source")
    blobs = [pickle.dumps([fields(e) for e in b], protocol=pickle.HIGHEST_PROTOCOL) for b in evs]
    n_events = sum(map(len, evs))
    del evs
    first_ids = [
        ExportTraceServiceRequest.FromString(r).resource_spans[0].scope_spans[0].spans[0].span_id
        for r in reqs
    ]
    gc.collect()
    gc.freeze()
    tmp = tempfile.mkdtemp(prefix="goblock-bench-")
    early = (t_base - time.time_ns()) / 1e9 - 1.0  # the child starts in ~1 s
    if early > 0:
        await asyncio.sleep(early)
    else:
        print(f"(inputs built {-early:.1f} s late: the first events are that old)")
    path = os.path.join(tmp, "sock")
    cmd = [sys.executable, os.path.abspath(__file__), "--serve", path]
    if tree:
        cmd += ["--tree", tree]
    if profile:
        cmd = [PYSPY, "record", "--nonblocking", "-r", "50", "-f", "raw", "-o", profile, "--", *cmd]
    child = subprocess.Popen(cmd, start_new_session=True)
    try:
        for _ in range(600):
            if os.path.exists(path):
                break
            await asyncio.sleep(0.05)
        reader, writer = await asyncio.open_unix_connection(path)
        pid = _pipeline_pid(child.pid)
        cpu0 = procstat.cpu_seconds(pid)
        rss_idle = rss_mib(pid)
        mine0, wall0 = time.process_time(), time.monotonic()
        behind = 0.0
        half = len(reqs) // 2
        cpu_half = wall_half = 0.0
        for i, (raw, blob) in enumerate(zip(reqs, blobs, strict=True)):
            due = wall0 + i * interval
            if i == half:  # the second half is the steady state: max_events reached
                cpu_half, wall_half = procstat.cpu_seconds(pid), time.monotonic()
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                behind = max(behind, -delay)
            writer.write(_FRAME.pack(_EVENTS, due, b"", len(blob)) + blob)
            writer.write(_FRAME.pack(_SPANS, due, first_ids[i], len(raw)) + raw)
            await writer.drain()
        fed = time.monotonic() - wall0
        cpu_end = procstat.cpu_seconds(pid)
        cpu_fed = cpu_end - cpu0
        cpu_half = cpu_end - cpu_half
        wall_half = wall0 + fed - wall_half
        writer.write(_FRAME.pack(_END, 0.0, b"", 0))
        await writer.drain()
        res = json.loads(await reader.read())
        wall = time.monotonic() - wall0
        cpu = procstat.cpu_seconds(pid) - cpu0
        hwm = procstat.hwm_bytes(pid) / 2**20
        mine = time.process_time() - mine0
        writer.close()
    finally:
        child.wait(timeout=120 if profile else 30)
    lat = res["lat"]
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3  # noqa: E731
    print(
        f"live: {rate:,} spans/s with {n_events / seconds:,.0f} events/s for {seconds:g}s "
        f"(fed in {fed:.1f}s, at most {behind * 1e3:.0f} ms behind schedule); "
        f"pipeline = its own process (pid {pid}), default config (join_delay 2s)"
    )
    print(
        f"added latency (due to be sent → handed on by goblock): p50 {p(0.5):.0f} ms, "
        f"p99 {p(0.99):.0f} ms, max {lat[-1] * 1e3:.0f} ms over {len(lat)} requests "
        f"({res['missing']} not out within 10 s of the end); "
        f"{res['spans_out'] / n:.1f} spans out per app span (episode children included)"
    )
    print(
        f"pipeline CPU {cpu_fed / fed * 100:.0f}% of one core while fed "
        f"({cpu / wall * 100:.0f}% incl. drain) = {n / cpu:,.0f} spans and "
        f"{n_events / cpu:,.0f} events per CPU-second; of it: event decode (pickle, "
        f"stands in for the receiver) {res['decode_s']:.1f}s, ingest {res['ingest_s']:.1f}s, "
        f"route+parse {res['route_s']:.1f}s, the rest (join, encode, sink) "
        f"{cpu - res['decode_s'] - res['ingest_s'] - res['route_s']:.1f}s of {cpu:.1f}s"
    )
    print(
        "worst latency per second of the feed (s): "
        + " ".join(f"{x:.1f}" for x in res["max_per_s"])
    )
    print(
        f"second half of the feed (events past max_events, the unjoined pass at work): "
        f"{cpu_half / wall_half * 100:.0f}% of one core = "
        f"{(n - n // PER_REQUEST // 2 * PER_REQUEST) / cpu_half:,.0f} spans per CPU-second"
    )
    gcs = res["gc2"]
    gc2 = [t for g, t in gcs if g == 2]
    gc01 = [t for g, t in gcs if g < 2]
    print(
        "longest single calls: "
        + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in res["longest"].items())
        + f"; the pipeline waited {res['runq_wait_s']:.1f} s for a CPU (run queue, other load)"
    )
    print(
        f"full GCs (generation 2) in the pipeline: {len(gc2)}, "
        f"longest {max(gc2, default=0) * 1e3:.0f} ms, total {sum(gc2) * 1e3:.0f} ms; "
        f"young (0-1): {len(gc01)}, longest "
        + "/".join(f"{t * 1e3:.0f}" for t in sorted(gc01, reverse=True)[:3])
        + " ms, "
        f"total {sum(gc01) * 1e3:.0f} ms; "
        "longest event-loop stalls: "
        + (", ".join(f"{lag * 1e3:.0f} ms at {t:.1f}s" for lag, t in res["lags"]) or "none")
    )
    print(
        f"pipeline RSS: idle {rss_idle:.0f} MiB, at the end {res['rss_mib']:.0f} MiB, peak "
        f"{max(hwm, res['rss_peak_mib']):.0f} MiB; events held {res['held']:,}; "
        f"load generator: {mine / wall * 100:.0f}% of a core, RSS {rss_mib():.0f} MiB"
    )


# -- output identity (--digest): the join's output over fixed inputs, hashed ---------------

_DIGEST_T0 = 1_700_000_000_000_000_000  # fixed: the hash covers every timestamp
_REASONS = (
    "chan receive", "select", "sleep", "sync.Mutex.Lock", "sync.WaitGroup.Wait", "IO wait",
    "semacquire", "GC assist wait", "preempted", "GC worker (idle)", "wëird reason",
)  # fmt: skip
_SYSCALLS = (
    ("read", "tcp 10.0.0.1:40001->10.0.0.5:5432"), ("write", "tcp 10.0.0.1:40001->10.0.0.5:5432"),
    ("fsync", "/var/lib/db/wal"), ("read", "pipe:[77]"), ("futex", ""), ("epoll_pwait", ""),
    ("connect", "tcp 10.0.0.1:40002->10.0.0.9:80"), ("pread64", "/tmp/data.bin"), ("fsync", ""),
)  # fmt: skip


def _mixed(seed: int, n_spans: int) -> tuple[list[bytes], list[list[Event]]]:
    """Random but fixed (seeded) spans and events of every kind the join reads: nested
    spans of one trace on shared goroutines, markers (some twice), goroutine attributes,
    gRPC spans with flow-control waits and frames, child goroutines, TCP events on the
    spans' sockets, stop-the-worlds, netpoll parks naming their fd; spans 1-60 ms."""
    import random as _random

    rnd = _random.Random(seed)
    t0 = _DIGEST_T0
    reqs: list[bytes] = []
    batches: list[list[Event]] = []
    k = 0
    while k < n_spans:
        req = ExportTraceServiceRequest()
        rs = req.resource_spans.add()
        rs.resource.attributes.append(KeyValue(key="process.pid", value=AnyValue(int_value=PID)))
        if rnd.random() < 0.2:  # an unobserved resource in the same request
            other = req.resource_spans.add()
            other.resource.attributes.append(
                KeyValue(key="process.pid", value=AnyValue(int_value=OTHER))
            )
            o = other.scope_spans.add().spans.add()
            o.trace_id, o.span_id, o.name = b"\x01" * 16, b"\x02" * 8, "other"
        evs: list[Event] = []
        for _ in range(rnd.randint(1, 3)):  # scopes
            ss = rs.scope_spans.add()
            ss.scope.name = "digest"
            for _ in range(rnd.randint(1, 30)):
                k += 1
                base = t0 + k * 3 * MS
                trace = rnd.randint(1, k).to_bytes(16, "big")  # traces recur: rivals
                goid = rnd.randint(1, 40)
                tid = rnd.choice((0, 11, 12, 13))
                start = base + rnd.randint(0, 5) * MS
                end = start + rnd.randint(0, 60) * MS
                s = ss.spans.add()
                s.trace_id, s.span_id = trace, k.to_bytes(8, "big")
                s.name, s.kind = f"op{k % 7}", rnd.choice((1, 2, 3))
                s.start_time_unix_nano, s.end_time_unix_nano = start, end
                how = rnd.random()
                if how < 0.6:
                    m = {"trace_id": trace.hex(), "span_id": s.span_id.hex()}
                    evs.append(Event("span_marker", PID, tid, goid, end, end, m, "ebpf"))
                    if rnd.random() < 0.2:
                        evs.append(Event("span_marker", PID, tid, goid, end, end, m, "ebpf"))
                elif how < 0.8:
                    kv = s.attributes.add()
                    kv.key = "goblock.goroutine.id"
                    kv.value.int_value = goid
                grpc = rnd.random() < 0.15
                if grpc:
                    kv = s.attributes.add()
                    kv.key, kv.value.string_value = "rpc.system", "grpc"
                if rnd.random() < 0.2 and end - start > 10 * MS:  # a fan-out: the critical path
                    wait = rnd.choice(("chan receive", "sync.WaitGroup.Wait", "select"))
                    a, b = start + 2 * MS, end - MS
                    evs.append(Event("park", PID, tid, goid, a, b, {"reason": wait}, "ebpf"))
                    for c in range(rnd.randint(1, 3)):
                        child = 100 + k * 4 + c
                        at = {"parent_goid": goid, "child_goid": child}
                        evs.append(Event("lineage", PID, tid, goid, a - MS, a - MS, at, "ebpf"))
                        name, target = rnd.choice(_SYSCALLS)
                        at = {"name": name, "nr": 0, "fd": 7, "fd_target": target}
                        e = b - rnd.randint(0, 3) * MS
                        evs.append(Event("syscall", PID, 13, child, a, e, at, "ebpf"))
                for _ in range(rnd.randint(0, 12)):
                    a = start + rnd.randint(-5, 60) * MS + rnd.randint(0, MS)
                    b = a + rnd.choice((0, 10_000, 500_000, MS, 3 * MS, 20 * MS))
                    g = rnd.choice((goid, goid, goid, 0, rnd.randint(1, 40)))
                    kind = rnd.choice(
                        ("park", "park", "syscall", "syscall", "offcpu", "runqueue", "gc_assist",
                         "lineage", "tcp", "grpc")
                    )  # fmt: skip
                    if rnd.random() < 0.02:
                        kind = "gc_stw"
                    src = "gotrace" if rnd.random() < 0.1 else "ebpf"
                    if kind == "park":
                        at: dict[str, Any] = {"reason": rnd.choice(_REASONS)}
                        if at["reason"] == "IO wait" and rnd.random() < 0.3:
                            at["fd_target"] = rnd.choice(_SYSCALLS[:2])[1]
                            at["mode"] = rnd.choice(("r", "w"))
                    elif kind == "syscall":
                        name, target = rnd.choice(_SYSCALLS)
                        at = {"name": name, "nr": 0, "fd": 7, "fd_target": target}
                    elif kind == "offcpu":
                        at = {"state": rnd.choice(("blocked", "preempted", "other"))}
                    elif kind == "runqueue":
                        at = {"after": rnd.choice(("wakeup", "preempted", ""))}
                    elif kind == "gc_stw":
                        at, g = {"reason": rnd.choice(("GC mark termination", ""))}, 0
                    elif kind == "lineage":
                        at = {"parent_goid": goid, "child_goid": rnd.randint(41, 60)}
                        b = a
                    elif kind == "tcp":
                        typ = rnd.choice(("retransmit", "probe", "reset_sent", "zero_window"))
                        at = {
                            "type": typ, "saddr": "10.0.0.1", "sport": 40001,
                            "daddr": "10.0.0.5", "dport": 5432, "srtt_us": 120, "snd_wnd": 65535,
                        }  # fmt: skip
                        b = a
                    else:
                        typ = rnd.choice(("flow_control_wait", "goaway", "ping", "window_update"))
                        way = rnd.choice(("sent", "received"))
                        at = {"type": typ, "conn": "0xc0001", "side": "client", "direction": way}
                        at["stream_id"] = 1
                        if typ == "goaway":
                            at.update(code=2, code_name="INTERNAL_ERROR", debug_data="x")
                        if typ != "flow_control_wait":
                            b = a
                    evs.append(Event(kind, PID, rnd.choice((tid, 0, 11)), g, a, b, at, src))
        reqs.append(req.SerializeToString())
        evs.sort(key=attrgetter("end_ns"))
        batches.append(evs)
    return reqs, batches


async def _digest_case(
    reqs: list[bytes], evs: list[list[Event]], options: dict, parsed: bool
) -> tuple[str, int, int]:
    import hashlib

    from otel_goblock.processors.goblock import join as join_mod
    from otel_goblock.processors.goblock import unjoined as unjoined_mod

    join_mod._rand.seed(7)  # episode span ids
    unjoined_mod._rand.seed(8)  # unjoined episodes' trace ids
    proc, _ = make(options)
    got: list[bytes] = []

    class Keep:
        async def consume_traces(self, data: Traces) -> None:
            got.append(data.serialized())

    proc._next = Keep()
    for raw, batch in zip(reqs, evs, strict=True):
        await proc.consume_traces(Traces(raw=b"", span_count=0, events=batch))
        if parsed:
            msg = ExportTraceServiceRequest.FromString(raw)
            await proc.consume_traces(Traces(message=msg, span_count=count_spans(msg)))
        else:
            await proc.consume_traces(Traces(raw=raw, span_count=PER_REQUEST))
    await proc.shutdown()  # the unjoined pass over everything left (unjoined: emit)
    h = hashlib.sha256()
    spans = 0
    for blob in got:
        h.update(len(blob).to_bytes(8, "little"))
        h.update(blob)
        for rs in ExportTraceServiceRequest.FromString(blob).resource_spans:
            spans += sum(len(ss.spans) for ss in rs.scope_spans)
    return h.hexdigest()[:16], len(got), spans


async def digest() -> None:
    """Hash the join's output over fixed inputs (`--tree DIR` for another checkout's
    code): equal hashes, equal bytes out — attributes, episode spans, span events, ids
    (the random span ids seeded), unjoined episodes. A CPU change to the join must not
    change a byte of them."""
    global KEEP
    cases: list[tuple[str, list[bytes], list[list[Event]], dict, bool]] = []
    reqs, evs = build(3000, PID, _DIGEST_T0, MS // 4)
    cases.append(("benchmark, 10 events/span", reqs, evs, {}, False))
    KEEP = (2, 3, 5, 7, 9)
    reqs, evs = build(3000, PID, _DIGEST_T0, MS // 4)
    KEEP = None
    cases.append(("benchmark --light", reqs, evs, {}, False))
    cases.append(("benchmark --light, max_events 2000", reqs, evs, {"max_events": 2000}, False))
    for seed in (1, 2, 3):
        reqs, evs = _mixed(seed, 1500)
        emit = {"unjoined": "emit", "critical_path_depth": 2}
        cases.append((f"mixed seed {seed}", reqs, evs, emit, False))
        cases.append((f"mixed seed {seed}, parsed request", reqs, evs, emit, True))
        zero = {"min_episode": "0s"}
        cases.append((f"mixed seed {seed}, min_episode 0s", reqs, evs, zero, False))
        cases.append((f"mixed seed {seed}, max_events 500", reqs, evs, {"max_events": 500}, False))
    for name, reqs, evs, options, parsed in cases:
        opts = {"retention": "1000000h", "unjoined_after": "100000h", **options}
        h, n_req, n_spans = await _digest_case(reqs, evs, opts, parsed)
        print(f"{h}  {n_req:>5} requests {n_spans:>7} spans  {name}")


PYSPY = os.path.join(os.path.dirname(sys.executable), "py-spy")


def _pipeline_pid(pid: int) -> int:
    """The python process itself (under py-spy it is py-spy's child)."""
    for _ in range(100):
        kids = procstat.tree(pid)
        for k in kids:
            try:
                with open(f"/proc/{k}/cmdline", "rb") as f:
                    if b"--serve" in f.read() and not _is_pyspy(k):
                        return k
            except OSError:
                pass
        time.sleep(0.05)
    return pid


def _is_pyspy(pid: int) -> bool:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")) == "py-spy"
    except OSError:
        return False


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--spans", type=int, default=50_000)
    ap.add_argument("--rate", type=int, default=0, help="live mode: spans/s")
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--light", action="store_true", help="5 events per span instead of 10")
    ap.add_argument("--profile", metavar="FILE", help="live mode: py-spy the pipeline process")
    ap.add_argument(
        "--digest", action="store_true", help="hash the join's output over fixed inputs"
    )
    ap.add_argument("--serve", metavar="SOCKET", help=argparse.SUPPRESS)  # the pipeline side
    ap.add_argument(
        "--tree", metavar="DIR", help="run another checkout's code (e.g. a worktree of HEAD~)"
    )
    args = ap.parse_args()
    if args.light:
        KEEP = (2, 3, 5, 7, 9)
    if args.digest:
        asyncio.run(digest())
    elif args.serve:
        asyncio.run(serve(args.serve, args.profile))
    elif args.rate:
        asyncio.run(live(args.rate, args.seconds, args.profile, args.tree))
    else:
        asyncio.run(main(args.spans))
