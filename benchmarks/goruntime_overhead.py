"""Cost of the Go runtime uprobes on the demo service, side by side in one run.

The demo service serves `/net?ms=1` at a fixed offered rate; the same load runs with the
runtime probes off and on, alternating (off, on, off, on) so that machine noise hits both.
Printed per mode: throughput, p50/p99 latency, the agent's CPU (this process: BPF ring
draining), and uprobe hits per request (kernel BPF run counts, bpf_stats_enabled).

    .venv/bin/python benchmarks/goruntime_overhead.py [--rate 2000] [--seconds 10]
        [--families parks,span_markers] [--path '/net?ms=1']

Needs root. Target (issue 5): <= 5 % throughput loss at 2k req/s on /net with parks +
span markers on.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from otel_goblock.receivers.ebpf.btf import task_fsbase_offset  # noqa: E402
from otel_goblock.receivers.ebpf.goruntime import GoRuntimeProbes  # noqa: E402
from pipelines import free_port  # noqa: E402


def prog_stats() -> dict[str, tuple[int, int]]:
    """{program name: (run_cnt, run_time_ns)} of the loaded BPF programs."""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
    stats: dict[str, tuple[int, int]] = {}
    for p in json.loads(out.stdout or "[]"):
        name = p.get("name", "")
        if name.startswith("go_"):
            cnt, ns = stats.get(name, (0, 0))
            stats[name] = (cnt + p.get("run_cnt", 0), ns + p.get("run_time_ns", 0))
    return stats


def load(demo: Path, url: str, path: str, rate: int, seconds: int) -> dict:
    r = subprocess.run(
        [
            str(demo),
            "load",
            "-url",
            url,
            "-scenario",
            path,
            "-rate",
            str(rate),
            "-concurrency",
            "64",
            "-duration",
            f"{seconds}s",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--families", default="parks,span_markers")
    ap.add_argument("--path", default="/net?ms=1")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    families = set(args.families.split(","))
    demo = ROOT / "build" / "demo-service"
    if not demo.exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "build_demo.sh")], check=True)
    # the load driver is the same program (`demo-service load`): run it from a copy, since
    # uprobes sit on a binary's inode and would trap in the load generator too
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp())
    loader = tmp / "demo-load"
    shutil.copy2(demo, loader)
    # and the target from a copy of its own: another agent's probes on build/demo-service
    # (a test or soak running meanwhile) would trap in the "off" baseline
    target = tmp / "demo-service"
    shutil.copy2(demo, target)
    demo = target
    subprocess.run(["sysctl", "-q", "kernel.bpf_stats_enabled=1"], check=False)
    port = free_port()
    env = dict(
        os.environ,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}",
        OTEL_METRICS_EXPORTER="none",
        OTEL_TRACES_SAMPLER="always_on",
    )
    proc = subprocess.Popen(
        [str(demo), "-listen", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    time.sleep(1.0)
    from otel_goblock.receivers.ebpf.program import Program, ProgramOptions

    prog = Program(
        ProgramOptions(
            syscalls=False,
            sched=False,
            tcp=False,
            goruntime=True,
            fsbase_offset=task_fsbase_offset(),
        )
    )
    b = prog.bpf
    received = [0]

    def on_event(_ctx, _data, _size):  # type: ignore[no-untyped-def]
        received[0] += 1

    b["go_events"].open_ring_buffer(on_event)
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            b.ring_buffer_poll(20)
            b.ring_buffer_consume()  # records mostly do not wake a poller (goblock.h)

    threading.Thread(target=drain, daemon=True).start()
    load(loader, url, args.path, args.rate, 2)  # warm-up
    rows = []
    try:
        for _ in range(args.rounds):
            for mode in ("off", "on"):
                probes = None
                if mode == "on":
                    probes = GoRuntimeProbes(b, families, park_threshold_ns=1_000_000)
                    probes.attach(proc.pid, str(demo))
                before = prog_stats()
                cpu0 = resource.getrusage(resource.RUSAGE_SELF)
                r = load(loader, url, args.path, args.rate, args.seconds)
                cpu1 = resource.getrusage(resource.RUSAGE_SELF)
                after = prog_stats()
                if probes:
                    probes.close()
                per_prog = {k: after[k][0] - before.get(k, (0, 0))[0] for k in after}
                hits = sum(per_prog.values())
                bpf_ns = sum(after.get(k, (0, 0))[1] - before.get(k, (0, 0))[1] for k in after)
                agent = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
                lat = r["latency_ms"]
                rows.append(
                    {
                        "mode": mode,
                        "rps": r["throughput_rps"],
                        "p50": lat["p50"],
                        "p99": lat["p99"],
                        "requests": r["requests"],
                        "errors": r["errors"],
                        "agent_cpu_pct": 100 * agent / args.seconds,
                        "hits_per_req": hits / max(1, r["requests"]),
                        "bpf_us_per_req": bpf_ns / 1e3 / max(1, r["requests"]),
                        "per_prog": {
                            k: round(v / max(1, r["requests"]), 2) for k, v in per_prog.items() if v
                        },
                    }
                )
    finally:
        stop.set()
        proc.terminate()
        proc.wait()
        prog.close()
    print(
        f"{args.path} at {args.rate} req/s offered, {args.seconds}s per run, "
        f"families={sorted(families)}"
    )
    print(
        f"{'mode':<5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'agent CPU%':>10} "
        f"{'hits/req':>9} {'BPF µs/req':>10}"
    )
    for x in rows:
        print(
            f"{x['mode']:<5} {x['rps']:>9.1f} {x['p50']:>8.2f} {x['p99']:>8.2f} "
            f"{x['agent_cpu_pct']:>10.1f} {x['hits_per_req']:>9.1f} {x['bpf_us_per_req']:>10.2f}"
        )
        if x["per_prog"]:
            print("      hits/req by program:", x["per_prog"])
    off = [x for x in rows if x["mode"] == "off"]
    on = [x for x in rows if x["mode"] == "on"]
    mean = lambda xs, k: sum(x[k] for x in xs) / len(xs)  # noqa: E731
    print(
        f"throughput on/off: {mean(on, 'rps') / mean(off, 'rps'):.3f}   "
        f"p99 on/off: {mean(on, 'p99') / max(1e-9, mean(off, 'p99')):.3f}   "
        f"events received: {received[0]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
