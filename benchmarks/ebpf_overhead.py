"""Overhead of the eBPF receiver on a Go service, and the Python side's decode ceiling.

Part 1 — side by side in one run: a Go service under a fixed load on loopback, rounds with
the receiver off and on (syscalls + scheduler + TCP, targeting the service's pid, so that a
load driver built from the same binary is not observed) in ABBA order (off,on then on,off)
so that drift cancels.  The service: the gbfx HTTP server (tests/ebpf/fixtures/gbfx, /work:
a little CPU + JSON; ~1 event per request) with gbfx's load driver, or with --app demo the
issue's own example: the demo service (examples/demo-service, built and started through
scripts/build_demo.sh and scripts/services.sh) under its own `load` subcommand, --scenario
(default /net?ms=0: a new backend connection per request, ~14 events per request).  Closed
loop at --concurrency, or paced with --rate.  The receiver runs in a process of its own
(`--agent`), started per round once the target's binary has been read, so its CPU is its
own; with --old-tree each round runs off, old and new (reversed every other round).
Prints throughput, p50/p99 latency, CPU per request (server + load driver + agent,
user+sys) and the agent's own CPU (% of one core) per round, then each variant's ratio to
the off run of its round (median and spread), and the BPF programs' own run time per
program (kernel.bpf_stats_enabled: run_time_ns / run_cnt from the program fds' fdinfo;
--bpf-stats off leaves them out and the clock reads they cost).  BPF time is charged to
whichever task hit the tracepoint (server, load driver, anything else on the host), not to
the agent's process.

Part 2 — events/s the Python side decodes before loss: a target doing a syscall storm with
syscall_threshold 0 (every syscall becomes an event) into a 64 MiB ring; the pipeline's
consumer only counts.  Prints decoded events/s and lost events/s while saturated.

The garbage collector is set up as `otel-goblock` sets it up (otel_goblock/cli.py: freeze
what start-up built, young threshold 50k) unless --default-gc: CPython's defaults (700)
make the collector walk each batch of events several times while it is built, a cost the
agent does not have.  With --old-tree (a git worktree of older code), part 2 also runs old
and new alternately (ABAB, each in its own process against the same storm binary) and
prints them side by side.

Run as root:  .venv/bin/python benchmarks/ebpf_overhead.py [--app gbfx|demo] [--rounds 4]
              [--seconds 5] [--concurrency 8] [--rate 5000] [--only syscalls|sched|tcp]
              [--no-ceiling | --ceiling-only] [--old-tree /tmp/wt-old] [--ceiling-rounds 2]
              [--bpf-stats on|off] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
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


def _driver(argv: list[str]) -> tuple[str, float]:
    """Run a load driver; its stdout and CPU seconds (its rusage, user+sys)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"load driver exited {p.returncode}: {out}")
    return out, ru.ru_utime + ru.ru_stime


class GbfxApp:
    """The gbfx HTTP server (/work: a little CPU + JSON) and gbfx's own load driver."""

    label = "gbfx serve (/work)"

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> int:
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", str(self.port)], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        while "listening" not in self.proc.stdout.readline():
            pass
        return self.proc.pid

    def load(self, conc: int, seconds: int, rate: int) -> dict[str, float]:
        # the target is the server's pid: the load driver (same binary) is not a target
        url = f"http://127.0.0.1:{self.port}/work"
        argv = [str(self.binary), "load", url, str(conc), str(seconds), str(rate)]
        out, cpu = _driver(argv)
        vals = dict(re.findall(r"(\w+)=([\d.]+)", out))
        keys = ("rps", "p50_us", "p99_us", "requests", "errors")
        res = {k: float(v) for k, v in vals.items() if k in keys}
        res["driver_cpu_s"] = cpu
        return res

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


class DemoApp:
    """The demo service (examples/demo-service, built and started by scripts/build_demo.sh
    and scripts/services.sh through the tests' harness) and its own `load` subcommand.

    Run from a copy of build/demo-service: an agent of someone else targeting that path by
    executable (a test, a soak) would otherwise observe this instance too, in both modes.
    The load driver is the same program; the receiver targets the service by pid, so the
    driver is not observed. The demo exports its spans over OTLP/gRPC to a port where
    nothing listens (as goruntime_overhead.py does): the SDK still builds and batches every
    span, and no collector shares the two cores."""

    def __init__(self, scenario: str) -> None:
        from harness import DemoService, build_demo

        self.scenario = scenario
        self.label = f"demo-service {scenario}"
        self.tmp = Path(tempfile.mkdtemp(prefix="ebpf-bench-demo-"))
        self.binary = self.tmp / "demo-service"
        shutil.copy2(build_demo().dwarf, self.binary)
        self.demo = DemoService(
            run_dir=self.tmp / "run",
            otlp_endpoint=f"http://127.0.0.1:{free_port()}",
            binary=self.binary,
            extra_env={"DEMO_DATA_DIR": str(self.tmp / "data")},
        )

    def start(self) -> int:
        self.demo.start()
        assert self.demo.pid is not None
        return self.demo.pid

    def load(self, conc: int, seconds: int, rate: int) -> dict[str, float]:
        argv = [str(self.binary), "load", "-url", self.demo.url, "-scenario", self.scenario]
        argv += ["-rate", str(rate), "-concurrency", str(conc), "-duration", f"{seconds}s"]
        out, cpu = _driver(argv)
        rep = json.loads(out)
        lat = rep["latency_ms"]
        return {
            "rps": rep["throughput_rps"],
            "p50_us": 1000 * lat["p50"],
            "p99_us": 1000 * lat["p99"],
            "requests": rep["requests"],
            "errors": rep["errors"],
            "driver_cpu_s": cpu,
        }

    def stop(self) -> None:
        try:
            self.demo.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


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


def agent_main(cfg: dict, default_gc: bool) -> None:
    """The receiver as its own process (`--agent`), so that its CPU is its own and an older
    tree (`--tree`) can run beside this one. Talks over stdin/stdout, a JSON line each:
    ready after start; `begin` snapshots; `end` answers with the CPU (user+sys, all
    threads), BPF run time per program, events and losses since `begin`; EOF stops it."""
    r = Running(cfg, name="bench", sink=CountingSink()).start()
    # the target's binary is read (DWARF: goid offset) once per exec on the refiner thread:
    # wait for it, so that a per-round start-up cost of seconds of CPU does not pass for
    # the steady state (one worker: a no-op submitted now runs after that read)
    r.receiver.targets._refiner.submit(lambda: None).result()
    if not default_gc:
        agent_gc()  # as the CLI does once the service started
    print(json.dumps({"ready": os.getpid()}), flush=True)
    snap: tuple = ()
    for line in sys.stdin:
        cpu = sum(os.times()[:2])
        if line.strip() == "begin":
            snap = (cpu, prog_stats(r.receiver), r.sink.count, sum(r.receiver.lost.values()))
            print(json.dumps({"ok": 1}), flush=True)
        elif line.strip() == "end":
            cpu0, s0, ev0, lost0 = snap
            s1 = prog_stats(r.receiver)
            bpf = {
                n: (ns - s0.get(n, (0, 0))[0], c - s0.get(n, (0, 0))[1])
                for n, (ns, c) in s1.items()
            }
            out = {
                "cpu_s": cpu - cpu0,
                "bpf": bpf,
                "events": r.sink.count - ev0,
                "lost": sum(r.receiver.lost.values()) - lost0,
            }
            print(json.dumps(out), flush=True)
    r.stop()


class Agent:
    """One `--agent` process of this tree or of `tree`."""

    def __init__(self, cfg: dict, tree: Path | None, default_gc: bool) -> None:
        argv = [sys.executable, __file__, "--agent", json.dumps(cfg)]
        argv += (["--tree", str(tree)] if tree else []) + (["--default-gc"] if default_gc else [])
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._ask(None)  # ready: compiled and attached

    def _ask(self, cmd: str | None) -> dict:
        assert self.p.stdin is not None and self.p.stdout is not None
        if cmd is not None:
            self.p.stdin.write(cmd + "\n")
            self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError(f"agent exited {self.p.wait()}")
        return json.loads(line)

    def begin(self) -> None:
        self._ask("begin")

    def end(self) -> dict:
        return self._ask("end")

    def close(self) -> None:
        assert self.p.stdin is not None
        self.p.stdin.close()
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):6.3f}  [{min(xs):.3f} .. {max(xs):.3f}]"


def overhead(
    app, rounds: int, seconds: int, conc: int, rate: int, extra: dict, trees: dict, default_gc: bool
) -> None:
    """Rounds of off and each variant in `trees` (name → tree, None = this one), the order
    reversed every other round (off,A,B / B,A,off) so that drift cancels; each variant is
    compared with the off run of its own round."""
    pid = app.start()
    try:
        app.load(conc, 1, rate)  # warm-up
        srv = psutil.Process(pid)
        cfg = {"targets": [{"pid": pid}], "metrics_interval": "10s", **extra}
        modes = ["off", *trees]
        results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        bpf_ns: dict[str, dict[str, list[int]]] = {m: {} for m in trees}  # prog → [ns, cnt]
        on_wall: dict[str, float] = dict.fromkeys(trees, 0.0)
        for i in range(rounds):
            for mode in modes if i % 2 == 0 else modes[::-1]:
                agent = Agent(cfg, trees[mode], default_gc) if mode != "off" else None
                try:
                    if agent is not None:
                        agent.begin()
                    srv0 = sum(srv.cpu_times()[:2])
                    t0 = time.monotonic()
                    res = app.load(conc, seconds, rate)
                    wall = time.monotonic() - t0
                    a = agent.end() if agent is not None else {"cpu_s": 0.0}
                finally:
                    if agent is not None:
                        agent.close()
                res["agent_cpu_pct"] = 100 * a["cpu_s"] / wall
                # CPU per request of everything the run involves (server + load driver +
                # agent; BPF time is charged to the tasks that hit the tracepoints): on a
                # machine shared with other work this is steadier than throughput, and
                # when the run is CPU-bound, throughput loss ≈ 1 - off/on of it
                total_s = sum(srv.cpu_times()[:2]) - srv0 + res["driver_cpu_s"] + a["cpu_s"]
                res["cpu_us_per_req"] = 1e6 * total_s / max(res["requests"], 1)
                line = (
                    f"  {mode:3s}: rps={res['rps']:8.0f}  p50={res['p50_us']:6.0f}us  "
                    f"p99={res['p99_us']:6.0f}us  cpu/req={res['cpu_us_per_req']:5.1f}us  "
                    f"agent_cpu={res['agent_cpu_pct']:5.1f}%"
                )
                if res.get("errors"):
                    line += f"  errors={res['errors']:.0f}"
                if agent is not None:
                    on_wall[mode] += wall
                    acc = bpf_ns[mode]
                    for name, (ns, cnt) in a["bpf"].items():
                        acc.setdefault(name, [0, 0])
                        acc[name][0] += ns
                        acc[name][1] += cnt
                    res["bpf_pct"] = 100 * sum(ns for ns, _ in a["bpf"].values()) / (wall * 1e9)
                    line += f"  bpf={res['bpf_pct']:4.1f}%  events={a['events']} lost={a['lost']}"
                results[mode].append(res)
                print(line, flush=True)

        def med(mode: str, key: str) -> float:
            return statistics.median(x[key] for x in results[mode])

        keys = ("rps", "p50_us", "p99_us", "cpu_us_per_req", "agent_cpu_pct")
        print("\nmedians          " + "".join(f"{m:>10s}" for m in modes))
        for key in keys:
            print(f"  {key:14s} " + "".join(f"{med(m, key):10.1f}" for m in modes))
        for m in trees:
            print(f"\n{m}/off of each round: median [min .. max]")
            for key in ("rps", "p50_us", "p99_us", "cpu_us_per_req"):
                pairs = zip(results["off"], results[m], strict=True)
                print(f"  {key:14s} {spread([on[key] / off[key] for off, on in pairs])}")
            rps_on, cpu_on = med(m, "rps"), med(m, "agent_cpu_pct")
            print(f"  agent CPU per 5k req/s ≈ {cpu_on * 5000 / rps_on:.1f}% of a core (Python)")
        for m in trees:
            if not any(cnt for _, cnt in bpf_ns[m].values()):
                print("  (no BPF run-time stats: kernel.bpf_stats_enabled is 0)")
                continue
            print(f"\nBPF programs over the {m} rounds (kernel.bpf_stats_enabled)")
            print(
                f"  {'program':34s} {'ns/run':>7s} {'runs/s':>9s} {'% core':>7s} {'runs/req':>8s}"
            )
            total, wall, reqs = 0, on_wall[m], sum(x["requests"] for x in results[m])
            for name, (ns, cnt) in sorted(bpf_ns[m].items(), key=lambda kv: -kv[1][0]):
                total += ns
                if cnt:
                    print(
                        f"  {name:34s} {ns / cnt:7.0f} {cnt / wall:9.0f} "
                        f"{100 * ns / (wall * 1e9):7.2f} {cnt / reqs:8.2f}"
                    )
            print(
                f"  {'total':34s} {'':7s} {'':9s} {100 * total / (wall * 1e9):7.2f}"
                f"   (= {total / 1e3 / reqs:.2f} us/request)"
            )
    finally:
        app.stop()


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
    ap.add_argument("--app", choices=("gbfx", "demo"), default="gbfx", help="part 1's target")
    ap.add_argument("--scenario", default="/net?ms=0", help="the demo's load (--app demo)")
    ap.add_argument("--rounds", type=int, default=4, help="off/on pairs, ABBA order")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--rate", type=int, default=0, help="paced load, req/s (0: closed loop)")
    ap.add_argument("--only", choices=("syscalls", "sched", "tcp"), help="one concern only")
    ap.add_argument("--no-ceiling", action="store_true", help="skip part 2")
    ap.add_argument("--ceiling-only", action="store_true", help="part 2 only")
    ap.add_argument("--old-tree", type=Path, help="parts 1 and 2 side by side with this checkout")
    ap.add_argument("--ceiling-rounds", type=int, default=2, help="old/new pairs of part 2")
    ap.add_argument(
        "--default-gc", action="store_true", help="CPython's gc thresholds, not the CLI's"
    )
    ap.add_argument(
        "--bpf-stats",
        choices=("on", "off"),
        default="on",
        help="kernel.bpf_stats_enabled during part 1 (on: per-program BPF time, at two "
        "clock reads per program run, charged to the app like the programs themselves)",
    )
    ap.add_argument("--tree", type=Path, help=argparse.SUPPRESS)  # handled at import
    ap.add_argument("--binary", type=Path, help=argparse.SUPPRESS)  # prebuilt gbfx-bench
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--agent", help=argparse.SUPPRESS)  # the receiver's process (agent_main)
    ap.add_argument(
        "--go-runtime", action="store_true", help="also the Go runtime + grpc uprobes (defaults)"
    )
    ap.add_argument(
        "--no-netpoll-peers",
        action="store_true",
        help="netpoll_peers: false (no EAGAIN read events; parks lose their peer address)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a receiver setting for the on rounds (e.g. syscall_threshold=10s: the programs "
        "run, no episode is emitted); repeatable",
    )
    args = ap.parse_args()
    if args.agent:
        agent_main(json.loads(args.agent), args.default_gc)
        return
    if not args.default_gc:
        agent_gc()
    binary = args.binary or build()
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
    stats_before = BPF_STATS.read_text().strip() if BPF_STATS.exists() else ""
    want = "1" if args.bpf_stats == "on" else "0"
    if stats_before and stats_before != want:
        BPF_STATS.write_text(want + "\n")
    app = DemoApp(args.scenario) if args.app == "demo" else GbfxApp(binary)
    how = f"paced to {args.rate} req/s" if args.rate else "closed-loop"
    trees: dict[str, Path | None] = {"on": None}
    if args.old_tree:
        trees = {"old": args.old_tree.resolve(), "new": None}
    print(
        f"part 1: {app.label} under {args.concurrency}-way {how} load, {args.rounds} rounds "
        f"x {args.seconds}s of {', '.join(['off', *trees])}; bpf_stats {args.bpf_stats}"
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
    for kv in args.set:
        key, sep, value = kv.partition("=")
        if not sep:
            ap.error(f"--set {kv!r}: expected KEY=VALUE")
        extra[key] = value
        print(f"  ({key}: {value})")
    if args.only:
        print(f"  (only {args.only} on)")
    if args.go_runtime:
        print("  (with the Go runtime and grpc uprobes at their defaults)")
    try:
        overhead(
            app,
            args.rounds,
            args.seconds,
            args.concurrency,
            args.rate,
            extra,
            trees,
            args.default_gc,
        )
    finally:
        if stats_before == "1" and want == "0":
            BPF_STATS.write_text("1\n")  # back on: other sessions may read it
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
