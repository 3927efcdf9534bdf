"""Overhead of the eBPF receiver on a Go service, and the Python side's decode ceiling.

Part 1 — side by side in one run: the gbfx HTTP server (tests/ebpf/fixtures/gbfx) under a
fixed closed-loop load on loopback (gbfx load, fixed concurrency), alternating rounds with
the receiver off and on (syscalls + scheduler + TCP, targeting the server's pid).  Prints
throughput, p50/p99 latency and the agent's own CPU (user+sys of this process over the
round, in % of one core), then the on/off ratios.

Part 2 — events/s the Python side decodes before loss: a target doing a syscall storm with
syscall_threshold 0 (every syscall becomes an event) into a 64 MiB ring; the pipeline's
consumer only counts.  Prints decoded events/s and lost events/s while saturated.

Run as root:  .venv/bin/python benchmarks/ebpf_overhead.py [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "ebpf"))

from ebpf_harness import FIXTURE_SRC, GO, Running, Sink  # noqa: E402


class CountingSink(Sink):
    """Counts events without keeping them: the benchmark measures the receiver."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def consume_traces(self, traces) -> None:
        self.count += len(traces.events)

    async def consume_metrics(self, metrics) -> None:
        pass


def build() -> Path:
    out = REPO / "build" / "bench" / "gbfx"
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [GO, "build", "-o", str(out), "."],
        cwd=FIXTURE_SRC,
        check=True,
        env={**os.environ, "CGO_ENABLED": "0"},
    )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_load(binary: Path, port: int, conc: int, seconds: int) -> dict[str, float]:
    # the load generator is a copy named differently so that no comm/exe target matches it
    out = subprocess.run(
        [str(binary), "load", f"http://127.0.0.1:{port}/work", str(conc), str(seconds)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    vals = dict(re.findall(r"(\w+)=([\d.]+)", out))
    return {k: float(v) for k, v in vals.items() if k in ("rps", "p50_us", "p99_us", "requests")}


def overhead(binary: Path, rounds: int, seconds: int, conc: int, extra: dict) -> None:
    port = free_port()
    server = subprocess.Popen([str(binary), "serve", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        while "listening" not in server.stdout.readline():
            pass
        run_load(binary, port, conc, 1)  # warm-up
        me = psutil.Process()
        results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        for _ in range(rounds):
            for mode in ("off", "on"):
                r = None
                if mode == "on":
                    r = Running(
                        {"targets": [{"pid": server.pid}], "metrics_interval": "10s", **extra},
                        name="bench",
                        sink=CountingSink(),
                    ).start()
                cpu0 = sum(me.cpu_times()[:2])
                t0 = time.monotonic()
                res = run_load(binary, port, conc, seconds)
                wall = time.monotonic() - t0
                res["agent_cpu_pct"] = 100 * (sum(me.cpu_times()[:2]) - cpu0) / wall
                if r is not None:
                    res["events"] = r.sink.count
                    res["lost"] = sum(r.receiver.lost.values())
                    r.stop()
                results[mode].append(res)
                print(
                    f"  {mode:3s}: rps={res['rps']:8.0f}  p50={res['p50_us']:6.0f}us  "
                    f"p99={res['p99_us']:6.0f}us  agent_cpu={res['agent_cpu_pct']:5.1f}%"
                    + (f"  events={res['events']} lost={res['lost']}" if mode == "on" else ""),
                    flush=True,
                )

        def med(mode: str, key: str) -> float:
            return statistics.median(x[key] for x in results[mode])

        print("\nmedians            off        on     on/off")
        for key in ("rps", "p50_us", "p99_us", "agent_cpu_pct"):
            off, on = med("off", key), med("on", key)
            ratio = on / off if off else float("nan")
            print(f"  {key:14s} {off:9.1f} {on:9.1f}   {ratio:6.3f}")
        rps_on = med("on", "rps")
        cpu_on = med("on", "agent_cpu_pct")
        print(f"  agent CPU per 5k req/s ≈ {cpu_on * 5000 / rps_on:.1f}% of a core")
    finally:
        server.kill()
        server.wait()


def decode_ceiling(binary: Path, seconds: int) -> None:
    storm_bin = binary  # comm "gbfx": matched by the comm target below
    r = Running(
        {
            "targets": [{"comm": "^gbfx$"}],
            "sched": False,
            "tcp": False,
            "syscall_threshold": "0",
            "ring_buffer_size": "64MiB",
            "max_pending_batches": 100000,
            "poll_interval": "10ms",
        },
        name="ceiling",
        sink=CountingSink(),
    ).start()
    try:
        p = subprocess.Popen(
            [str(storm_bin), "storm", str(seconds + 1)], stdout=subprocess.PIPE, text=True
        )
        time.sleep(1.0)  # past the fixture's start-up pause, into the storm
        me = psutil.Process()
        d0, l0, t0 = r.receiver.decoded, sum(r.receiver.lost.values()), time.monotonic()
        c0 = sum(me.cpu_times()[:2])
        time.sleep(seconds)
        d1, l1, t1 = r.receiver.decoded, sum(r.receiver.lost.values()), time.monotonic()
        c1 = sum(me.cpu_times()[:2])
        out = p.communicate()[0]
        calls = int(re.search(r"calls=(\d+)", out).group(1))
        dt, cpu = t1 - t0, c1 - c0
        print(f"  storm: {calls / (seconds + 1):,.0f} syscalls/s offered")
        print(
            f"  decoded: {(d1 - d0) / dt:,.0f} events/s wall, lost: {(l1 - l0) / dt:,.0f} events/s"
        )
        print(
            f"  agent CPU: {100 * cpu / dt:.0f}% of a core -> "
            f"{(d1 - d0) / cpu:,.0f} events per agent CPU-second"
        )
    finally:
        r.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--only", choices=("syscalls", "sched", "tcp"), help="one concern only")
    ap.add_argument("--no-ceiling", action="store_true", help="skip part 2")
    args = ap.parse_args()
    binary = build()
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    print(
        f"part 1: gbfx serve under {args.concurrency}-way closed-loop load, "
        f"{args.rounds} rounds x {args.seconds}s, receiver off vs on"
    )
    extra = {c: c == args.only for c in ("syscalls", "sched", "tcp")} if args.only else {}
    if args.only:
        print(f"  (only {args.only} on)")
    overhead(binary, args.rounds, args.seconds, args.concurrency, extra)
    if not args.no_ceiling:
        print("\npart 2: Python decode ceiling (syscall storm, threshold 0)")
        decode_ceiling(binary, args.seconds)


if __name__ == "__main__":
    main()
