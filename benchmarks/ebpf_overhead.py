"""Overhead of the eBPF receiver on a Go service, and the Python side's decode ceiling.

Part 1 — side by side in one run: the gbfx HTTP server (tests/ebpf/fixtures/gbfx) under a
fixed load on loopback (gbfx load: fixed concurrency, closed loop; with --rate, paced to a
fixed request rate), rounds with the receiver off and on (syscalls + scheduler + TCP,
targeting the server's pid) in ABBA order (off,on then on,off) so that drift cancels.
Prints throughput, p50/p99 latency, CPU per request (server + load driver + agent, user+sys)
and the agent's own CPU (this process over the round, in % of one core) per round, then
the on/off ratio of each adjacent pair (median and spread), and the BPF programs' own run
time per program
(kernel.bpf_stats_enabled: run_time_ns / run_cnt from the program fds' fdinfo).  BPF time
is charged to whichever task hit the tracepoint (server, load driver, anything else on
the host), not to the agent's process.

Part 2 — events/s the Python side decodes before loss: a target doing a syscall storm with
syscall_threshold 0 (every syscall becomes an event) into a 64 MiB ring; the pipeline's
consumer only counts.  Prints decoded events/s and lost events/s while saturated.

The garbage collector is set up as `otel-goblock` sets it up (otel_goblock/cli.py: freeze
what start-up built, young threshold 50k) unless --default-gc: CPython's defaults (700)
make the collector walk each batch of events several times while it is built, a cost the
agent does not have.  With
--old-tree (a git worktree of older code), part 2 runs old and new alternately (ABAB, each
in its own process against the same storm binary) and prints them side by side.

Run as root:  .venv/bin/python benchmarks/ebpf_overhead.py [--rounds 4] [--seconds 5]
              [--rate 5000] [--only syscalls|sched|tcp] [--no-ceiling | --ceiling-only]
              [--old-tree /tmp/wt-old] [--ceiling-rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
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
sys.path[:0] = [str(REPO / "tests" / "ebpf"), str(REPO / "tests")]  # ebpf_harness, ebpfgate


def use_tree(tree: Path) -> None:
    """Import otel_goblock (and its receivers, bpf/ sources) from another checkout of the
    repo: the editable install maps the package names to folders, remapped here before the
    first import, so old and new code run the same benchmark code."""
    import __editable___otel_goblock_0_1_0_finder as finder  # type: ignore[import-not-found]

    for name, folder in list(finder.MAPPING.items()):
        finder.MAPPING[name] = str(tree / Path(folder).relative_to(REPO))


if "--tree" in sys.argv:
    use_tree(Path(sys.argv[sys.argv.index("--tree") + 1]).resolve())

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
    # not named gbfx: the eBPF tests target comm ^gbfx$, and a test session running beside
    # the benchmark would otherwise trace the benchmark's server and load driver too
    out = REPO / "build" / "bench" / "gbfx-bench"
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


def run_load(binary: Path, port: int, conc: int, seconds: int, rate: int = 0) -> dict[str, float]:
    """One load run; also the load driver's CPU seconds (its rusage)."""
    # the target is the server's pid: the load driver (same binary) is not a target
    p = subprocess.Popen(
        [
            str(binary),
            "load",
            f"http://127.0.0.1:{port}/work",
            str(conc),
            str(seconds),
            str(rate),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"load driver exited {p.returncode}: {out}")
    vals = dict(re.findall(r"(\w+)=([\d.]+)", out))
    res = {k: float(v) for k, v in vals.items() if k in ("rps", "p50_us", "p99_us", "requests")}
    res["driver_cpu_s"] = ru.ru_utime + ru.ru_stime
    return res


BPF_STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def prog_stats(receiver) -> dict[str, tuple[int, int]]:
    """run_time_ns and run_cnt of each loaded BPF program of the receiver (fdinfo)."""
    out = {}
    for name, fn in receiver.program.bpf.funcs.items():
        info = Path(f"/proc/self/fdinfo/{fn.fd}").read_text()
        vals = dict(re.findall(r"^(\w+):\s+(\d+)$", info, re.MULTILINE))
        label = name.decode().removeprefix("tracepoint__").replace("__", ":")
        out[label] = (int(vals.get("run_time_ns", 0)), int(vals.get("run_cnt", 0)))
    return out


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):6.3f}  [{min(xs):.3f} .. {max(xs):.3f}]"


def overhead(binary: Path, rounds: int, seconds: int, conc: int, rate: int, extra: dict) -> None:
    port = free_port()
    server = subprocess.Popen([str(binary), "serve", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        while "listening" not in server.stdout.readline():
            pass
        run_load(binary, port, conc, 1, rate)  # warm-up
        me = psutil.Process()
        srv = psutil.Process(server.pid)
        results: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        bpf_ns: dict[str, list[int]] = {}  # program -> [run_time_ns, run_cnt] over on-rounds
        on_wall = 0.0
        for i in range(rounds):
            for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
                r = None
                if mode == "on":
                    r = Running(
                        {"targets": [{"pid": server.pid}], "metrics_interval": "10s", **extra},
                        name="bench",
                        sink=CountingSink(),
                    ).start()
                    s0 = prog_stats(r.receiver)
                cpu0 = sum(me.cpu_times()[:2])
                srv0 = sum(srv.cpu_times()[:2])
                t0 = time.monotonic()
                res = run_load(binary, port, conc, seconds, rate)
                wall = time.monotonic() - t0
                agent_s = sum(me.cpu_times()[:2]) - cpu0
                res["agent_cpu_pct"] = 100 * agent_s / wall
                # CPU per request of everything the run involves (server + load driver +
                # agent; BPF time is charged to the tasks that hit the tracepoints): on a
                # machine shared with other work this is steadier than throughput, and
                # when the run is CPU-bound, throughput loss ≈ 1 - off/on of it
                total_s = sum(srv.cpu_times()[:2]) - srv0 + res["driver_cpu_s"] + agent_s
                res["cpu_us_per_req"] = 1e6 * total_s / max(res["requests"], 1)
                if r is not None:
                    s1 = prog_stats(r.receiver)
                    on_wall += wall
                    for name, (ns, cnt) in s1.items():
                        acc = bpf_ns.setdefault(name, [0, 0])
                        ns0, cnt0 = s0.get(name, (0, 0))
                        acc[0] += ns - ns0
                        acc[1] += cnt - cnt0
                    res["bpf_pct"] = (
                        100 * sum(ns - s0[n][0] for n, (ns, _) in s1.items()) / (wall * 1e9)
                    )
                    res["events"] = r.sink.count
                    res["lost"] = sum(r.receiver.lost.values())
                    r.stop()
                results[mode].append(res)
                print(
                    f"  {mode:3s}: rps={res['rps']:8.0f}  p50={res['p50_us']:6.0f}us  "
                    f"p99={res['p99_us']:6.0f}us  cpu/req={res['cpu_us_per_req']:5.1f}us  "
                    f"agent_cpu={res['agent_cpu_pct']:5.1f}%"
                    + (
                        f"  bpf={res['bpf_pct']:4.1f}%  events={res['events']} lost={res['lost']}"
                        if mode == "on"
                        else ""
                    ),
                    flush=True,
                )

        def med(mode: str, key: str) -> float:
            return statistics.median(x[key] for x in results[mode])

        print("\nmedians            off        on     on/off")
        for key in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "agent_cpu_pct"):
            off, on = med("off", key), med("on", key)
            ratio = on / off if off else float("nan")
            print(f"  {key:14s} {off:9.1f} {on:9.1f}   {ratio:6.3f}")
        print("\non/off of each adjacent pair: median [min .. max]")
        for key in ("rps", "p50_us", "p99_us", "cpu_us_per_req"):
            pairs = zip(results["off"], results["on"], strict=True)
            ratios = [on[key] / off[key] for off, on in pairs]
            print(f"  {key:14s} {spread(ratios)}")
        rps_on = med("on", "rps")
        cpu_on = med("on", "agent_cpu_pct")
        print(f"  agent CPU per 5k req/s ≈ {cpu_on * 5000 / rps_on:.1f}% of a core (Python side)")
        if not any(cnt for _, cnt in bpf_ns.values()):
            print("  (no BPF run-time stats: kernel.bpf_stats_enabled is 0)")
            return
        print("\nBPF programs over the on-rounds (kernel.bpf_stats_enabled)")
        print(f"  {'program':34s} {'ns/run':>7s} {'runs/s':>9s} {'% core':>7s}")
        total = 0
        for name, (ns, cnt) in sorted(bpf_ns.items(), key=lambda kv: -kv[1][0]):
            total += ns
            if cnt:
                print(
                    f"  {name:34s} {ns / cnt:7.0f} {cnt / on_wall:9.0f} "
                    f"{100 * ns / (on_wall * 1e9):7.2f}"
                )
        print(
            f"  {'total':34s} {'':7s} {'':9s} {100 * total / (on_wall * 1e9):7.2f}"
            f"   (= {100 * total / (on_wall * 1e9) * 5000 / rps_on:.2f}% per 5k req/s)"
        )
    finally:
        server.kill()
        server.wait()


def decode_ceiling(binary: Path, seconds: int) -> dict[str, float]:
    storm_bin = binary  # comm "gbfx-bench": matched by the comm target below
    r = Running(
        {
            "targets": [{"comm": "^gbfx-bench$"}],
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
        return {
            "offered": calls / (seconds + 1),
            "decoded_per_s": (d1 - d0) / dt,
            "lost_per_s": (l1 - l0) / dt,
            "agent_pct": 100 * cpu / dt,
            "per_cpu_s": (d1 - d0) / cpu,
        }
    finally:
        r.stop()


def agent_gc() -> None:
    """The collector as otel_goblock/cli.py sets it once the service started."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def ceiling_side_by_side(
    binary: Path, seconds: int, old_tree: Path, rounds: int, default_gc: bool
) -> None:
    """Part 2 for the old tree and this one, alternating (old, new, new, old, ...) so that
    the machine's drift cancels; each run is a fresh process importing its own tree."""
    res: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for i in range(rounds):
        for which in ("old", "new") if i % 2 == 0 else ("new", "old"):
            argv = [sys.executable, __file__, "--ceiling-only", "--json", "--binary", str(binary)]
            argv += ["--seconds", str(seconds)] + (["--default-gc"] if default_gc else [])
            if which == "old":
                argv += ["--tree", str(old_tree)]
            out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            res[which].append(r)
            print(
                f"  {which}: decoded {r['decoded_per_s']:>9,.0f}/s"
                f"  lost {r['lost_per_s']:>10,.0f}/s"
                f"  agent {r['agent_pct']:3.0f}%  -> {r['per_cpu_s']:>9,.0f} events/CPU-s",
                flush=True,
            )
    print("\nmedians                       old         new    new/old")
    for key in ("decoded_per_s", "per_cpu_s", "agent_pct"):
        o = statistics.median(x[key] for x in res["old"])
        n = statistics.median(x[key] for x in res["new"])
        print(f"  {key:22s} {o:11,.0f} {n:11,.0f}    {n / o:6.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=4, help="off/on pairs, ABBA order")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rate", type=int, default=0, help="paced load, req/s (0: closed loop)")
    ap.add_argument("--only", choices=("syscalls", "sched", "tcp"), help="one concern only")
    ap.add_argument("--no-ceiling", action="store_true", help="skip part 2")
    ap.add_argument("--ceiling-only", action="store_true", help="part 2 only")
    ap.add_argument("--old-tree", type=Path, help="part 2 side by side with this checkout")
    ap.add_argument("--ceiling-rounds", type=int, default=2, help="old/new pairs of part 2")
    ap.add_argument(
        "--default-gc", action="store_true", help="CPython's gc thresholds, not the CLI's"
    )
    ap.add_argument("--tree", type=Path, help=argparse.SUPPRESS)  # handled at import
    ap.add_argument("--binary", type=Path, help=argparse.SUPPRESS)  # prebuilt gbfx-bench
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument(
        "--go-runtime", action="store_true", help="also the Go runtime + grpc uprobes (defaults)"
    )
    ap.add_argument(
        "--no-netpoll-peers",
        action="store_true",
        help="netpoll_peers: false (no EAGAIN read events; parks lose their peer address)",
    )
    args = ap.parse_args()
    binary = args.binary or build()
    if not args.default_gc:
        agent_gc()
    if args.ceiling_only and args.json:  # one run of a side-by-side comparison
        with contextlib.redirect_stdout(sys.stderr):
            r = decode_ceiling(binary, args.seconds)
        print(json.dumps(r))
        return
    if args.ceiling_only:
        print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
        print(
            "part 2: Python decode ceiling (syscall storm, threshold 0), gc "
            + ("defaults" if args.default_gc else "as otel-goblock sets it")
        )
        if args.old_tree:
            ceiling_side_by_side(
                binary, args.seconds, args.old_tree, args.ceiling_rounds, args.default_gc
            )
        else:
            decode_ceiling(binary, args.seconds)
        return
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    if BPF_STATS.exists() and BPF_STATS.read_text().strip() == "0":
        BPF_STATS.write_text("1\n")  # left on: other sessions may be reading it too
    how = f"paced to {args.rate} req/s" if args.rate else "closed-loop"
    print(
        f"part 1: gbfx serve under {args.concurrency}-way {how} load, "
        f"{args.rounds} off/on pairs x {args.seconds}s, receiver off vs on"
    )
    extra: dict = {c: c == args.only for c in ("syscalls", "sched", "tcp")} if args.only else {}
    if not args.go_runtime:
        # the kernel side only: the Go runtime / grpc uprobes (on by default) have their own
        # benchmarks (goruntime_overhead.py, grpc_probes_overhead.py)
        extra["go_runtime"] = {f: False for f in ("parks", "gc", "lineage", "span_markers")}
        extra["go_grpc"] = {"enabled": False}
    if args.no_netpoll_peers:
        extra["netpoll_peers"] = False
        print("  (netpoll_peers: false)")
    if args.only:
        print(f"  (only {args.only} on)")
    if args.go_runtime:
        print("  (with the Go runtime and grpc uprobes at their defaults)")
    overhead(binary, args.rounds, args.seconds, args.concurrency, args.rate, extra)
    if not args.no_ceiling:
        print("\npart 2: Python decode ceiling (syscall storm, threshold 0)")
        print("  (gc " + ("defaults" if args.default_gc else "as otel-goblock sets it") + ")")
        if args.old_tree:
            ceiling_side_by_side(
                binary, args.seconds, args.old_tree, args.ceiling_rounds, args.default_gc
            )
        else:
            decode_ceiling(binary, args.seconds)


if __name__ == "__main__":
    main()
