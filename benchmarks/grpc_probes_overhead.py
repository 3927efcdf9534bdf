"""Cost of the grpc-go transport uprobes on the demo service, side by side in one run.

The demo serves a gRPC scenario (default `/grpc/unary`: one RPC per HTTP request over a
shared connection) at `--rate` offered requests/s (0: a closed loop of `--concurrency`);
the same load runs with the probes off and on, alternating (off, on, off, on) so
machine noise hits both. Printed per mode: throughput, p50/p99, the demo's CPU per
request (the uprobe trap is paid by the target, not by the agent), probe hits per
request (from the module's own per-probe counters), and the BPF programs' own run time
per hit (bpf_stats_enabled).

    .venv/bin/python benchmarks/grpc_probes_overhead.py [--path /grpc/unary]
        [--seconds 8] [--concurrency 16] [--rounds 2] [--families flow_control,...]

`µs per hit` = (demo CPU per request on - off) / hits per request: the whole cost of a hit
(trap + program), as the target pays it. Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "grpc"))
from grpc_harness import Demo, build_demo, compile_grpc_module  # noqa: E402
from otel_goblock.receivers.ebpf.grpcprobes import ALL_FAMILIES, GrpcProbes  # noqa: E402


def cpu_s(pid: int) -> float:
    """CPU seconds of the process's live threads, ns-precise (/proc/.../schedstat: the
    tick-based utime/stime of /proc/pid/stat are 10 ms grains)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass  # the thread exited
    return total / 1e9


def prog_ns() -> tuple[int, int]:
    """(run_cnt, run_time_ns) summed over the loaded grpc_* BPF programs."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
    cnt = ns = 0
    for p in json.loads(out.stdout or "[]"):
        if p.get("name", "").startswith("grpc_"):
            cnt += p.get("run_cnt", 0)
            ns += p.get("run_time_ns", 0)
    return cnt, ns


def load(demo: Path, url: str, path: str, conc: int, seconds: int, rate: int) -> dict:
    cmd = [str(demo), "load", "-url", url, "-scenario", path, "-rate", str(rate)]
    cmd += ["-concurrency", str(conc), "-duration", f"{seconds}s"]
    r = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--path", default="/grpc/unary")
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rate", type=int, default=1000, help="offered req/s; 0 = closed loop")
    ap.add_argument("--families", default=",".join(sorted(ALL_FAMILIES)))
    args = ap.parse_args()
    families = set(args.families.split(","))
    exe = build_demo()
    subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=1"], check=False)
    demo = Demo(exe, None)  # spans go nowhere: the exporter's own RPCs stay out of the count
    b = compile_grpc_module()
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            b.ring_buffer_poll(100)
            b.ring_buffer_consume()
            b.records.clear()

    threading.Thread(target=drain, daemon=True).start()
    load(exe, demo.base, args.path, args.concurrency, 2, args.rate)  # warm-up
    rows = []
    try:
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                probes = GrpcProbes(b, families, flow_threshold_ns=1_000_000)
                if mode == "on":
                    probes.attach(demo.pid, str(exe))
                h0, p0, c0 = probes.hits(), prog_ns(), cpu_s(demo.pid)
                r = load(exe, demo.base, args.path, args.concurrency, args.seconds, args.rate)
                h1, p1, c1 = probes.hits(), prog_ns(), cpu_s(demo.pid)
                probes.close()
                n = max(1, r["requests"])
                hits = {k: (h1[k] - h0[k]) / n for k in h1 if h1[k] != h0[k]}
                runs = p1[0] - p0[0]
                rows.append(
                    {
                        "mode": mode,
                        "rps": r["throughput_rps"],
                        "p50": r["latency_ms"]["p50"],
                        "p99": r["latency_ms"]["p99"],
                        "cpu_us_per_req": (c1 - c0) * 1e6 / n,
                        "hits_per_req": sum(hits.values()),
                        "prog_ns_per_hit": (p1[1] - p0[1]) / runs if runs else 0.0,
                        "hits": {k: round(v, 2) for k, v in hits.items()},
                    }
                )
    finally:
        stop.set()
        demo.stop()
        b.cleanup()
    offered = f"{args.rate} req/s offered" if args.rate else "closed loop"
    print(f"{args.path}, {offered}, {args.concurrency} workers, {args.seconds}s per run")
    print(
        f"{'mode':<5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'demo CPU µs/req':>16} "
        f"{'hits/req':>9} {'prog ns/hit':>11}"
    )
    for x in rows:
        print(
            f"{x['mode']:<5} {x['rps']:>9.1f} {x['p50']:>8.2f} {x['p99']:>8.2f} "
            f"{x['cpu_us_per_req']:>16.1f} {x['hits_per_req']:>9.2f} {x['prog_ns_per_hit']:>11.0f}"
        )
        if x["hits"]:
            print("      hits/req by probe:", x["hits"])
    off = [x for x in rows if x["mode"] == "off"]
    on = [x for x in rows if x["mode"] == "on"]

    def mean(xs: list[dict], k: str) -> float:
        """The median: one leg disturbed by another job on a shared machine must not
        decide the ratio."""
        return statistics.median(x[k] for x in xs)

    extra = mean(on, "cpu_us_per_req") - mean(off, "cpu_us_per_req")
    hits = mean(on, "hits_per_req")
    print(
        f"throughput on/off: {mean(on, 'rps') / mean(off, 'rps'):.3f}   "
        f"p99 on/off: {mean(on, 'p99') / max(1e-9, mean(off, 'p99')):.3f}   "
        f"demo CPU +{extra:.1f} µs/req = {extra / hits if hits else 0:.2f} µs per hit"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
