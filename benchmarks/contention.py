"""Contention: what the agent's CPU does to the observed app's tail on a small node.

    .venv/bin/python benchmarks/contention.py --rate 1200            # the soak's rate
    .venv/bin/python benchmarks/contention.py --variants off,tenant28x1,tenant28x20,on

One demo service, one load driver; the variants alternate in windows of `--seconds` for
`--rounds` rounds, side by side (this machine's noise moves a 60 s p99 by ~20 %):

- `off`: the eBPF-free pipeline (otlp → batch → file) takes the demo's spans;
- `tenantDxB`: `off` plus a synthetic co-tenant process that burns D % of one core in
  bursts of B ms (sleeping in between): a control with no probes at all, for "is it the
  probes or the CPU?" and "does the burst length matter?";
- `on`: the soak's full pipeline (every probe, goblock, file; benchmarks/soak.py);
- `pacedR/S`: `on` with `service.cpu_pacing` (a rest of S µs after each R µs of CPU).

Prints per window, then per variant the median p99, its ratio to `off`, p50 and the
pipeline's CPU (% of a core). Why this exists: the soak's p99 failure at 1200 req/s
was mostly the agent's CPU, not the probes: a co-tenant burning the agent's share in 20 ms
bursts raised the p99 as much as the agent did, and in 1 ms bursts it did not raise it.

Needs root (eBPF) and the demo build (scripts/build_demo.sh; done here if missing).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "benchmarks"))
from harness import DemoService, build_demo  # noqa: E402
from pipelines import Pipeline, free_port  # noqa: E402
from soak import pipeline_config, run_load  # noqa: E402

_TENANT = """
import sys, time
duty, burst = float(sys.argv[1]) / 100, float(sys.argv[2]) / 1000
rest = burst * (1 - duty) / duty
while True:
    end = time.perf_counter() + burst
    while time.perf_counter() < end:
        pass
    time.sleep(rest)
"""


def _variant(v: str) -> tuple[str, dict[str, Any]]:
    """(base: off | on, what to add)."""
    if v == "off" or v == "on":
        return v, {}
    m = re.fullmatch(r"tenant(\d+)x(\d+)", v)
    if m:
        return "off", {"tenant": (m[1], m[2])}
    m = re.fullmatch(r"paced(\d+)/(\d+)", v)
    if m:
        return "on", {"pacing": {"enabled": True, "run": f"{m[1]}us", "rest": f"{m[2]}us"}}
    raise SystemExit(f"contention: unknown variant {v!r} (off, on, tenantDxB, pacedR/S)")


def run_window(demo: DemoService, binary: Path, wd: Path, port: int, v: str, args: Any) -> dict:
    base, extra = _variant(v)
    out = wd / "out.jsonl"
    out.unlink(missing_ok=True)
    cfg = pipeline_config(port, out, demo.pid if base == "on" else None)
    if "pacing" in extra:
        cfg["service"]["cpu_pacing"] = extra["pacing"]
    p = Pipeline(cfg, wd, name=re.sub(r"\W", "_", v)).start(timeout=90)
    tenant = None
    try:
        time.sleep(3)  # attach, first drains
        if "tenant" in extra:
            tenant = subprocess.Popen([sys.executable, "-c", _TENANT, *extra["tenant"]])
        proc = psutil.Process(p.proc.pid)  # type: ignore[union-attr]
        c0, t0 = proc.cpu_times(), time.monotonic()
        rep = run_load(demo.url, binary, args.rate, args.seconds)
        c1, dt = proc.cpu_times(), time.monotonic() - t0
    finally:
        if tenant is not None:
            tenant.kill()
            tenant.wait()
        p.stop()
    cpu = (c1.user + c1.system - c0.user - c0.system) / dt * 100
    return {"p50": rep["latency_ms"]["p50"], "p99": rep["latency_ms"]["p99"], "cpu": cpu}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=1200.0, help="requests/s (paced)")
    ap.add_argument("--seconds", type=float, default=60.0, help="each window")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default="off,tenant28x1,tenant28x20,on,paced1000/1000")
    ap.add_argument("--workdir", type=Path, default=REPO / ".cache" / "contention")
    args = ap.parse_args()
    variants = args.variants.split(",")
    for v in variants:
        _variant(v)  # fail before anything starts
    args.workdir.mkdir(parents=True, exist_ok=True)
    binary = build_demo().dwarf
    port = free_port()
    demo = DemoService(run_dir=args.workdir / "demo", otlp_endpoint=f"http://127.0.0.1:{port}")
    demo.start()
    res: dict[str, list[dict]] = {v: [] for v in variants}
    try:
        for r in range(args.rounds):
            for v in variants:
                w = run_window(demo, binary, args.workdir, port, v, args)
                res[v].append(w)
                print(
                    f"round {r + 1}/{args.rounds} {v:>16}: p99 {w['p99']:.2f} ms, "
                    f"p50 {w['p50']:.2f} ms, pipeline {w['cpu']:.1f} % of a core",
                    flush=True,
                )
    finally:
        demo.stop()
    base = statistics.median(w["p99"] for w in res[variants[0]])
    print(f"\n{args.rate:.0f} req/s, {args.rounds} x {args.seconds:.0f} s; medians:")
    for v, ws in res.items():
        p99 = statistics.median(w["p99"] for w in ws)
        p50 = statistics.median(w["p50"] for w in ws)
        cpu = statistics.median(w["cpu"] for w in ws)
        print(
            f"  {v:>16}: p99 {p99:6.2f} ms ({p99 / base:.2f}x {variants[0]}), "
            f"p50 {p50:.2f} ms, pipeline {cpu:4.1f} % of a core"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
