#!/usr/bin/env python3
"""Throughput of otel-goblock against the OpenTelemetry Collector, side by side, one run.

Both systems run the same pipeline — otlp (gRPC) → batch → otlp_grpc — into the same
counting sink (build/bin/otlp-sink), fed by the same Go load generators (build/bin/otlp-load:
pre-serialized ExportTraceServiceRequests of 512 spans x 10 attributes). The pipeline under
test is pinned to one core (taskset), load generators and sink to another, so each system
gets the same CPU budget and the load side is the same for both.

Measured per system, over a window after warm-up:
  * spans/s sustained, counted at the sink (what actually went through);
  * CPU-seconds per 100k spans: utime+stime of the pipeline's process tree (/proc/<pid>/stat);
  * peak RSS (kernel VmHWM, and the sampled tree RSS);
and the ratios otel-goblock / collector. Then overload legs per system with memory_limiter
on: "overload" (open loop at --overload-factor x its own measured maximum) and "slowsink"
(the sink capped at max / factor), each with the receiver's max_concurrent_streams
unlimited and 16 (--overload-streams): goodput, peak RSS and refused spans.
See benchmarks/pipeline_vs_collector.md for the columns and the last results.

Why this shape: spans per CPU-second is the number that decides whether a node agent is
affordable, and the sink count (not the generator's) is the honest throughput. The
collector binary is built by scripts/build_otelcol.sh (collector v0.165.0 / v1.71.0).

Run:  .venv/bin/python benchmarks/pipeline_vs_collector.py --rounds 3 --out out/bench.json
      (about 8 minutes; --overload-factor 0 skips the overload legs)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pyspy_summary
from bench_configs import (
    MemoryLimit,
    PipelineSpec,
    collector_config,
    goblock_config,
)
from procstat import Snapshot, TreeSampler, cpu_seconds, set_autogroup_nice

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "build" / "bin"
SYSTEMS = ("collector", "goblock")
COUNTERS = ("sent_requests", "accepted_spans", "refused_spans", "rejected_spans", "failed_spans")


def free_port() -> int:
    """A loopback port free now (never the well-known OTLP/telemetry ports)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in (4317, 4318, 8888, 13133, 16686):
            return port


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


LEGEND = """\
columns: spans/s = at the sink over the window; CPU-s/100k = pipeline utime+stime per 100k
spans delivered, from load start until the sink went quiet; cores = pipeline CPU / wall;
peakRSS = VmHWM; refused = spans answered UNAVAILABLE; lost = accepted by the pipeline but
never at the sink (negative: the pipeline took requests the client had given up on);
other = share of the pipeline's core used by other processes (shared machine); runq =
seconds the pipeline waited for a CPU per CPU-second it ran; loadc = CPU of load generators
+ sink / wall (near 1.0: the load side may be the limit); run "/s16" = receiver
max_concurrent_streams 16 (clients queue the excess on their side)"""

NICE = 0  # set from --nice: the same priority for every benchmark process


def pinned(core: str, argv: list[str]) -> list[str]:
    """argv pinned to `core` (taskset execs in place, so the Popen pid is the program's)."""
    return ["taskset", "-c", core, *argv]


def spawn(argv: list[str], **kw: Any) -> subprocess.Popen[Any]:
    """Start a benchmark process in its own session at the benchmark's priority (--nice).

    Its own session gives it its own scheduler autogroup, whose nice is what ranks it
    against other sessions' work on a shared machine. Same treatment for every process of
    both systems, so neither gets an edge."""
    proc: subprocess.Popen[Any] = subprocess.Popen(argv, start_new_session=True, **kw)
    if NICE:
        set_autogroup_nice(proc.pid, NICE)
    return proc


def goblock_bin(explicit: str = "") -> str | None:
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    venv = ROOT / ".venv" / "bin" / "otel-goblock"
    if venv.exists():
        return str(venv)
    return shutil.which("otel-goblock")


class Sink:
    """The counting sink process; keeps (local monotonic time, cumulative spans) lines."""

    def __init__(self, core: str, logdir: Path, max_spans_per_s: float = 0.0) -> None:
        argv = [str(BIN / "otlp-sink"), "-interval", "100ms"]
        if max_spans_per_s > 0:
            argv.append(f"-max-spans-per-s={max_spans_per_s}")
        with open(logdir / "sink.stderr", "w") as err:
            self.proc = spawn(
                pinned(core, argv),
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert self.proc.stdout is not None
        first = json.loads(self.proc.stdout.readline())
        self.endpoint: str = first["listen"]
        self.spans = 0
        self.t = time.monotonic()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            rec = json.loads(line)
            with self._lock:
                self.spans, self.t = rec["spans"], time.monotonic()

    def reading(self) -> tuple[float, int]:
        with self._lock:
            return self.t, self.spans

    def wait_quiet(self, quiet_s: float = 1.0, timeout_s: float = 20.0) -> int:
        """Wait until the count stops growing (the pipeline drained its batches/queue)."""
        deadline = time.monotonic() + timeout_s
        last, since = self.reading()[1], time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.reading()[1]
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                break
        return last

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Load:
    """Load generator settings (per leg)."""

    procs: int
    concurrency: int
    duration_s: float
    rate: float = 0.0  # total spans/s over all processes; 0 = as fast as accepted
    spans: int = 512
    attrs: int = 10


def start_load(load: Load, core: str, port: int) -> list[subprocess.Popen[str]]:
    procs = []
    for i in range(load.procs):
        argv = [
            str(BIN / "otlp-load"),
            f"-target=127.0.0.1:{port}",
            f"-duration={load.duration_s}s",
            f"-concurrency={load.concurrency}",
            f"-spans={load.spans}",
            f"-attrs={load.attrs}",
            f"-seed={i + 1}",
        ]
        if load.rate > 0:
            argv.append(f"-rate={load.rate / load.procs}")
        procs.append(spawn(pinned(core, argv), stdout=subprocess.PIPE, text=True))
    return procs


def collect_load(procs: list[subprocess.Popen[str]]) -> dict[str, Any]:
    total: dict[str, Any] = dict.fromkeys(COUNTERS, 0)
    total["codes"] = {}
    for p in procs:
        out, _ = p.communicate(timeout=120)
        rec = json.loads(out.strip().splitlines()[-1])
        for k in COUNTERS:
            total[k] += rec[k]
        for code, n in rec["codes"].items():
            total["codes"][code] = total["codes"].get(code, 0) + n
        total["request_bytes"] = rec["request_bytes"]
    return total


def scrape(port: int) -> dict[str, float]:
    """Sum of the pipeline's otelcol_* self-metrics by name (labels folded)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
            text = r.read().decode()
    except OSError as e:
        return {"error": str(e)}  # type: ignore[dict-item]
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("otelcol_"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name.endswith("_total"):
            name = name[: -len("_total")]
        with contextlib.suppress(ValueError):
            out[name] = out.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


@dataclass
class LegResult:
    system: str
    # "max", "overload" (pipeline CPU-bound) or "slowsink" (downstream-bound); "/s16": with
    # receiver max_concurrent_streams 16
    kind: str
    ok: bool = True
    skipped: str = ""
    spans_per_s: float = 0.0
    cpu_s_per_100k: float = 0.0  # whole leg: CPU from load start to drained / spans at sink
    cpu_s_per_100k_window: float = 0.0  # window only: CPU / spans at sink in the window
    cpu_cores: float = 0.0
    runq_wait_per_cpu_s: float = 0.0
    load_cpu_cores: float = 0.0  # CPU of load generators + sink / wall: ~1.0 = load-bound
    other_load_on_core: float = 0.0
    peak_rss_mb: float = 0.0
    peak_rss_mb_max: float = 0.0  # largest over the rounds (the table shows the median)
    offered_spans_per_s: float = 0.0
    sink_limit_spans_per_s: float = 0.0
    window_s: float = 0.0
    sink_spans_total: int = 0
    load: dict[str, Any] = field(default_factory=dict)
    self_metrics: dict[str, float] = field(default_factory=dict)
    lost_spans: int = 0
    log: str = ""
    profile: str = ""  # py-spy raw profile of this leg (--profile)


def pipeline_argv(system: str, cfg_path: Path, goblock: str = "") -> list[str] | None:
    if system == "collector":
        return [str(BIN / "otelcol-bench"), "--config", str(cfg_path)]
    exe = goblock_bin(goblock)
    return [exe, "run", "--config", str(cfg_path)] if exe else None


def preflight(system: str, args: argparse.Namespace, workdir: Path) -> str:
    """Validate the generated config with the system's own `validate` sub-command.

    Why: the two configs are built from one spec, but each product's schema decides; a
    config drift (a renamed option, a component missing from the build) must stop the leg
    with the product's own message, not show up as a slow or empty run. "" means valid."""
    spec = PipelineSpec(
        receiver_port=free_port(),
        sink_endpoint="127.0.0.1:1",
        telemetry_port=free_port(),
        compression=args.compression,
        memory_limit=MemoryLimit(args.limit_mib, args.spike_limit_mib),
        max_concurrent_streams=16,
    )
    cfg = goblock_config(spec) if system == "goblock" else collector_config(spec)
    path = workdir / f"{system}-preflight.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    if system == "collector":
        argv = [str(BIN / "otelcol-bench"), "validate", "--config", str(path)]
    else:
        exe = goblock_bin(args.goblock_bin)
        if exe is None:
            where = args.goblock_bin or ".venv/bin/otel-goblock"
            return f"otel-goblock is not installed ({where} not found)"
        argv = [exe, "validate", "--config", str(path)]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"{system} validate failed to run: {e}"
    if p.returncode != 0:
        return f"{system} rejects the benchmark config ({path}):\n    " + "\n    ".join(
            (p.stderr or p.stdout).strip().splitlines()[-8:]
        )
    return ""


def run_leg(
    system: str,
    kind: str,
    args: argparse.Namespace,
    workdir: Path,
    load: Load,
    memory_limit: MemoryLimit | None,
    sink_limit: float = 0.0,
    max_streams: int | None = None,
) -> LegResult:
    res = LegResult(system, kind)
    logdir = Path(tempfile.mkdtemp(prefix=f"{system}-{kind.replace('/', '-')}-", dir=workdir))
    res.log = str(logdir)
    res.sink_limit_spans_per_s = sink_limit
    sink = Sink(args.load_cpu, logdir, sink_limit)
    spec = PipelineSpec(
        receiver_port=free_port(),
        sink_endpoint=sink.endpoint,
        telemetry_port=free_port(),
        compression=args.compression,
        memory_limit=memory_limit,
        max_concurrent_streams=args.max_concurrent_streams if max_streams is None else max_streams,
    )
    cfg = goblock_config(spec) if system == "goblock" else collector_config(spec)
    cfg_path = logdir / "config.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    argv = pipeline_argv(system, cfg_path, args.goblock_bin)
    if argv is None:
        sink.stop()
        where = args.goblock_bin or ".venv/bin/otel-goblock"
        res.ok, res.skipped = False, f"otel-goblock is not installed ({where} not found)"
        return res
    with open(logdir / "pipeline.stderr", "w") as err:
        proc = spawn(pinned(args.pipeline_cpu, argv), stdout=err, stderr=err)
    sampler = TreeSampler(proc.pid, int(args.pipeline_cpu))
    try:
        deadline = time.monotonic() + args.start_timeout
        while not port_open(spec.receiver_port):
            if proc.poll() is not None or time.monotonic() > deadline:
                why = "exited" if proc.poll() is not None else "did not open its port"
                tail = (logdir / "pipeline.stderr").read_text().strip().splitlines()[-5:]
                res.ok = False
                res.skipped = f"{system} {why}; see {logdir}/pipeline.stderr:\n    " + (
                    "\n    ".join(tail) or "(empty)"
                )
                return res
            time.sleep(0.1)
        sampler.start()
        profiler = None
        s0 = sampler.snapshot()
        loaders = start_load(load, args.load_cpu, spec.receiver_port)
        time.sleep(args.warmup)
        a: Snapshot = sampler.snapshot()
        load_pids = [sink.proc.pid, *(p.pid for p in loaders)]
        la = sum(cpu_seconds(p) for p in load_pids)
        ta, sa = sink.reading()
        if args.profile and system == "goblock" and kind == "max" and not args.profiled:
            args.profiled = True  # one round only: the others stay unperturbed
            profiler = start_profiler(proc.pid, args, logdir)
        time.sleep(args.duration)
        b: Snapshot = sampler.snapshot()
        lb = sum(cpu_seconds(p) for p in load_pids)
        tb, sb = sink.reading()
        res.load = collect_load(loaders)
        res.sink_spans_total = sink.wait_quiet()
        s_end = sampler.snapshot()
        res.self_metrics = scrape(spec.telemetry_port)
        if profiler is not None:
            res.profile = stop_profiler(profiler, logdir)
        res.window_s = tb - ta
        spans = sb - sa
        cpu = b.cpu_s - a.cpu_s
        res.spans_per_s = spans / res.window_s if res.window_s > 0 else 0.0
        # CPU per span over the whole leg (load start → sink quiet): every span delivered,
        # including any a queue held past the window, so a growing queue cannot bias it.
        run_cpu = s_end.cpu_s - s0.cpu_s
        total = res.sink_spans_total
        res.cpu_s_per_100k = run_cpu / total * 1e5 if total else float("inf")
        res.cpu_s_per_100k_window = cpu / spans * 1e5 if spans else float("inf")
        res.cpu_cores = cpu / (b.t - a.t)
        res.load_cpu_cores = (lb - la) / (b.t - a.t)
        res.runq_wait_per_cpu_s = (b.runq_wait_s - a.runq_wait_s) / cpu if cpu else 0.0
        res.other_load_on_core = max(0.0, (b.core_busy_s - a.core_busy_s - cpu) / (b.t - a.t))
        res.peak_rss_mb = sampler.peak_rss() / 2**20
        res.peak_rss_mb_max = res.peak_rss_mb
        res.offered_spans_per_s = load.rate
        res.lost_spans = res.load["accepted_spans"] - res.sink_spans_total
        if spans == 0 and kind == "max":  # under overload, zero goodput is a result
            res.ok = False
            res.skipped = f"no spans reached the sink; see {logdir}/pipeline.stderr"
        return res
    finally:
        sampler.stop()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(args.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        sink.stop()


def start_profiler(
    pid: int, args: argparse.Namespace, logdir: Path
) -> subprocess.Popen[bytes] | None:
    """py-spy record of the goblock process over the window (on the load core)."""
    exe = shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
    if not os.path.exists(exe):
        print("py-spy not found: pip install py-spy (skipping the profile)", file=sys.stderr)
        return None
    argv = [
        exe,
        "record",
        "--nonblocking",
        "--format",
        "raw",
        "-r",
        "200",
        "-d",
        str(int(args.duration)),
        "-o",
        str(logdir / "profile.txt"),
        "-p",
        str(pid),
    ]
    with open(logdir / "py-spy.stderr", "w") as err:
        return subprocess.Popen(pinned(args.load_cpu, argv), stdout=subprocess.DEVNULL, stderr=err)


def stop_profiler(p: subprocess.Popen[bytes] | None, logdir: Path) -> str:
    if p is None:
        return ""
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)
        p.wait(10)
    return str(logdir / "profile.txt")


def fmt_row(r: LegResult) -> str:
    if not r.ok:
        return f"{r.system:<10} {r.kind:<13} SKIPPED: {r.skipped}"
    refused = r.load.get("refused_spans", 0)
    return (
        f"{r.system:<10} {r.kind:<13} {r.spans_per_s:>12,.0f} {r.cpu_s_per_100k:>12.3f} "
        f"{r.cpu_cores:>6.2f} {r.peak_rss_mb:>9.1f} {refused:>12,} {r.lost_spans:>6} "
        f"{r.other_load_on_core:>6.2f} {r.runq_wait_per_cpu_s:>6.2f} {r.load_cpu_cores:>6.2f}"
    )


def median_result(rs: list[LegResult]) -> LegResult:
    """The rounds' median of each measure (a shared machine makes single rounds noisy)."""
    ok = [r for r in rs if r.ok]
    if not ok:
        return rs[-1]
    mid = sorted(ok, key=lambda r: r.spans_per_s)[len(ok) // 2]
    return dataclasses.replace(
        mid,
        cpu_s_per_100k=statistics.median(r.cpu_s_per_100k for r in ok),
        cpu_s_per_100k_window=statistics.median(r.cpu_s_per_100k_window for r in ok),
        peak_rss_mb_max=max(r.peak_rss_mb for r in ok),
        cpu_cores=statistics.median(r.cpu_cores for r in ok),
        peak_rss_mb=statistics.median(r.peak_rss_mb for r in ok),
        other_load_on_core=statistics.median(r.other_load_on_core for r in ok),
        runq_wait_per_cpu_s=statistics.median(r.runq_wait_per_cpu_s for r in ok),
        load_cpu_cores=statistics.median(r.load_cpu_cores for r in ok),
        lost_spans=max(r.lost_spans for r in ok),
        profile=next((r.profile for r in rs if r.profile), ""),
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="write JSON results here")
    ap.add_argument("--duration", type=float, default=15.0, help="measured window, s")
    ap.add_argument("--warmup", type=float, default=4.0, help="load before the window, s")
    ap.add_argument("--rounds", type=int, default=1, help="max-throughput legs per system (median)")
    ap.add_argument("--load-procs", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=4, help="in-flight requests per load proc")
    ap.add_argument(
        "--compression",
        default="none",
        choices=["none", "gzip"],
        help="otlp_grpc exporter compression (same for both systems)",
    )
    ap.add_argument("--pipeline-cpu", default="0", help="core for the pipeline under test")
    ap.add_argument("--load-cpu", default="1", help="core(s) for load generators and sink")
    ap.add_argument("--systems", default="collector,goblock")
    ap.add_argument("--goblock-bin", default="", help="otel-goblock executable (default: .venv)")
    ap.add_argument("--overload-factor", type=float, default=2.0, help="0: skip overload")
    ap.add_argument(
        "--overload-concurrency",
        type=int,
        default=512,
        help="in-flight cap per load proc in the overload legs: high, so the offered rate is "
        "really offered (open loop) and requests pile up at the pipeline, as with many clients",
    )
    ap.add_argument(
        "--max-concurrent-streams",
        type=int,
        default=0,
        help="receiver grpc max_concurrent_streams for both systems in the max legs "
        "(0: the server's default, unlimited)",
    )
    ap.add_argument(
        "--overload-streams",
        default="0,16",
        help="receiver max_concurrent_streams values to run the overload legs with "
        "(0: unlimited, every request in flight lands in the pipeline's memory; 16: the "
        "clients queue the excess on their side)",
    )
    ap.add_argument("--limit-mib", type=int, default=250, help="memory_limiter limit_mib")
    ap.add_argument("--spike-limit-mib", type=int, default=50)
    ap.add_argument("--start-timeout", type=float, default=60.0)
    ap.add_argument("--stop-timeout", type=float, default=30.0)
    ap.add_argument(
        "--nice",
        type=int,
        default=-15,
        help="scheduler autogroup nice of pipeline, load and sink, each in its own session "
        "(the machine is shared: a raised priority keeps other sessions' work off the "
        "measured cores; the same for both systems; 0: leave alone)",
    )
    ap.add_argument("--profile", action="store_true", help="py-spy the goblock max leg")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (configs, logs)")
    args = ap.parse_args()
    global NICE
    NICE = args.nice
    args.profiled = False

    subprocess.run([str(ROOT / "scripts" / "build_otelcol.sh")], check=True)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="goblock-bench-"))
    print(f"work dir: {workdir}", file=sys.stderr)
    ncpu = os.cpu_count()
    print(
        f"machine: {ncpu} cores; pipeline pinned to cpu {args.pipeline_cpu}, load + sink on "
        f"cpu {args.load_cpu}; load: {args.load_procs} procs x {args.concurrency} in flight, "
        f"512 spans x 10 attrs per request; exporter compression={args.compression}; "
        f"loadavg {os.getloadavg()[0]:.2f}",
        file=sys.stderr,
    )

    results: dict[str, Any] = {"max": {}, "overload": {}, "rounds": []}
    per_system: dict[str, list[LegResult]] = {s: [] for s in systems}
    invalid = {s: why for s in systems if (why := preflight(s, args, workdir))}
    for s, why in invalid.items():
        print(f"skipping {s}: {why}", file=sys.stderr)
    for rnd in range(args.rounds):
        for system in systems:
            if system in invalid:
                continue
            load = Load(args.load_procs, args.concurrency, args.warmup + args.duration + 1)
            r = run_leg(system, "max", args, workdir, load, None)
            print(f"round {rnd + 1}: {fmt_row(r)}", file=sys.stderr)
            per_system[system].append(r)
            results["rounds"].append(r.__dict__)
    best = {
        s: median_result(rs) if rs else LegResult(s, "max", ok=False, skipped=invalid[s])
        for s, rs in per_system.items()
    }
    for s, r in best.items():
        results["max"][s] = r.__dict__

    # Overload, memory_limiter on, two ways to be 2x over capacity: (a) "overload": offered
    # factor x the system's own max, fast sink (the pipeline's CPU is the bottleneck);
    # (b) "slowsink": offered 1x max while the sink answers at max / factor (the downstream is
    # the bottleneck, so the exporter queue grows and memory_limiter must refuse).
    over: list[LegResult] = []
    if args.overload_factor > 0:
        ml = MemoryLimit(args.limit_mib, args.spike_limit_mib)
        streams = [int(x) for x in args.overload_streams.split(",") if x.strip()]
        for mcs, kind, system in itertools.product(streams, ("overload", "slowsink"), systems):
            if not best[system].ok:
                continue
            top = best[system].spans_per_s
            offered = args.overload_factor * top if kind == "overload" else top
            sink_limit = top / args.overload_factor if kind == "slowsink" else 0.0
            load = Load(
                args.load_procs,
                args.overload_concurrency,
                args.warmup + args.duration + 1,
                rate=offered,
            )
            leg = f"{kind}" + (f"/s{mcs}" if mcs else "")
            r = run_leg(system, leg, args, workdir, load, ml, sink_limit, mcs)
            over.append(r)
            results["overload"].setdefault(leg, {})[system] = r.__dict__
            print(f"{leg}: {fmt_row(r)}", file=sys.stderr)

    header = (
        f"{'system':<10} {'run':<13} {'spans/s':>12} {'CPU-s/100k':>12} {'cores':>6} "
        f"{'peakRSS MB':>9} {'refused':>12} {'lost':>6} {'other':>6} {'runq':>6} {'loadc':>6}"
    )
    print()
    print(header)
    print("-" * len(header))
    for s in systems:
        b = best[s]
        extra = ""
        if b.ok and args.rounds > 1:
            extra = f"   median of {args.rounds}; peak RSS max {b.peak_rss_mb_max:.0f} MB"
        print(fmt_row(b) + extra)
    for o in over:
        extra = f"   offered {o.offered_spans_per_s:,.0f}/s"
        if o.sink_limit_spans_per_s:
            extra += f", sink capped at {o.sink_limit_spans_per_s:,.0f}/s"
        print(fmt_row(o) + extra)
    ratios: dict[str, float] = {}
    g, c = best.get("goblock"), best.get("collector")
    if g and c and g.ok and c.ok:
        ratios = {
            "throughput_goblock_over_collector": g.spans_per_s / c.spans_per_s,
            "spans_per_cpu_s_goblock_over_collector": c.cpu_s_per_100k / g.cpu_s_per_100k,
            "peak_rss_goblock_over_collector": g.peak_rss_mb / c.peak_rss_mb,
        }
        print()
        print(
            "ratios goblock/collector: "
            f"throughput {ratios['throughput_goblock_over_collector']:.3f}x, "
            f"spans per CPU-second {ratios['spans_per_cpu_s_goblock_over_collector']:.3f}x "
            f"(target >= 1.0), peak RSS {ratios['peak_rss_goblock_over_collector']:.2f}x"
        )
    elif g and not g.ok:
        print(f"\ngoblock leg skipped: {g.skipped}")
    for o in over:
        if o.system == "goblock" and o.ok:
            verdict = "OK" if o.peak_rss_mb < 300 else "OVER TARGET"
            print(
                f"goblock {o.kind} (memory_limiter {args.limit_mib}/{args.spike_limit_mib} MiB): "
                f"peak RSS {o.peak_rss_mb:.1f} MB (target < 300 MB: {verdict}), refused "
                f"{o.load['refused_spans']:,} spans, accepted {o.load['accepted_spans']:,}, "
                f"lost after accept {o.lost_spans}"
            )
    print(LEGEND)
    g_prof = best["goblock"].profile if "goblock" in best else ""
    if g_prof and os.path.exists(g_prof):
        summary = pyspy_summary.summarize(Path(g_prof), top=12)
        results["goblock_profile"] = summary
        print(f"\nwhere otel-goblock's time goes (py-spy, round 1 max leg, {g_prof}):")
        print(pyspy_summary.render(summary))
    results["ratios"] = ratios
    results["settings"] = {k: v for k, v in vars(args).items()}
    results["machine"] = {
        "cores": ncpu,
        "loadavg_end": os.getloadavg(),
        "kernel": os.uname().release,
    }
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2, default=str))
        print(f"JSON: {args.out}", file=sys.stderr)
    failed = [r for r in [*best.values(), *over] if not r.ok]
    if not args.keep and not failed:
        shutil.rmtree(workdir, ignore_errors=True)
    elif failed:
        print(f"kept {workdir} (configs and logs of the failed legs)", file=sys.stderr)
    return 0 if all(r.ok for r in best.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
