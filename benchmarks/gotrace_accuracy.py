"""Span ↔ goroutine without uprobes: accuracy of the gotrace join, and what tracing costs.

The demo service runs with goblocktrace's span logs (GOBLOCK_TRACE_SPANS=1) and exports
its spans to a real `otel-goblock run`: otlp + gotrace receivers → goblock → file. No
eBPF anywhere, no root needed.

Accuracy: each scenario is hit `--requests` times (`--parallel` at once); per scenario the
share of server spans joined to a goroutine through a span marker (`goblock.join ==
span_marker`), the share whose `goblock.cause` is the documented one (docs/scenarios.md),
and the share with both.

Overhead: the demo's `load` subcommand drives `--load-path` in three modes, alternating
(off, pull, gotrace, off, pull, gotrace, …) so machine noise hits all alike:
  off      nobody records an execution trace (span logs cost one atomic load per span);
  pull     a plain HTTP client pulls /debug/pprof/trace back to back and discards it:
           the app's own cost of being traced;
  gotrace  the pipeline's gotrace receiver pulls and parses (what a user runs; on a
           small host the parse competes with the app for CPU).
Printed per mode: throughput, p50/p99 latency, the demo's CPU per request, the pipeline's
CPU share; and the ratios to `off`.

    .venv/bin/python benchmarks/gotrace_accuracy.py [--requests 20] [--window 2s]
        [--seconds 8] [--rounds 2] [--rate 0] [--load-path '/net?ms=1']
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from harness import DemoService, build_demo, hit_many, read_traces  # noqa: E402
from pipelines import Pipeline, free_port  # noqa: E402

SCENARIOS: list[tuple[str, set[str]]] = [
    ("/sleep?ms=100", {"sleep"}),
    ("/mutex?ms=100", {"lock"}),
    ("/chan?ms=100", {"channel"}),
    ("/select?ms=100", {"channel"}),
    ("/net?ms=100", {"network"}),
    ("/gc?ms=200", {"gc_assist", "gc_stw"}),
    ("/fanout?ms=100&n=4", {"network"}),
]


def pipeline_config(
    otlp_port: int, demo_port: int | None, out: Path, window: str, join_delay: str | None = None
) -> dict:
    receivers: dict[str, Any] = {
        "otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{otlp_port}"}}}
    }
    if demo_port is not None:
        receivers["gotrace"] = {
            "endpoint": f"http://127.0.0.1:{demo_port}/debug/pprof/trace",
            "window": window,
        }
    join_delay = join_delay or f"{float(window.rstrip('s')) + 3:g}s"
    return {
        "receivers": receivers,
        "processors": {"goblock": {"join_delay": join_delay}},
        "exporters": {"file": {"path": str(out)}},
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": list(receivers),
                    "processors": ["goblock"],
                    "exporters": ["file"],
                }
            }
        },
    }


def wait_pulling(p: Pipeline, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        m = p.metrics()
        if sum(v for k, v in m.items() if k.startswith("goblock_gotrace_traces") and "ok" in k):
            return
        time.sleep(0.2)
    raise TimeoutError(f"gotrace pulled nothing:\n{p.log()[-2000:]}")


def accuracy(
    demo: DemoService, out: Path, requests: int, parallel: int, wait_s: float, only: str | None
) -> list:
    rows = []
    for path, causes in SCENARIOS:
        if only and not any(path.startswith(p) for p in only.split(",")):
            continue
        results = hit_many(demo.url, [path] * requests, parallel=parallel)
        rows.append((path, causes, results))
    time.sleep(wait_s)  # the last spans wait join_delay in the processor
    deadline = time.monotonic() + 30
    table = []
    for path, causes, results in rows:
        ok = [r for r in results if r.status == 200]
        while True:
            traces = read_traces(out) if out.exists() else {}
            spans = []
            for r in ok:
                t = traces.get(r.trace_id)
                s = None
                if t is not None:
                    s = next(
                        (
                            x
                            for x in t.spans
                            if x.kind == "server"
                            and x.parent_span_id is None
                            and "goblock.cause" in x.attrs
                        ),
                        None,
                    )
                spans.append(s)
            if all(spans) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        found = [s for s in spans if s is not None]
        joined = [s for s in found if s.attrs.get("goblock.join") == "span_marker"]
        right = [s for s in found if s.attrs.get("goblock.cause") in causes]
        both = [s for s in joined if s.attrs.get("goblock.cause") in causes]
        wrong = sorted({s.attrs.get("goblock.cause") for s in found} - causes)
        table.append(
            {
                "scenario": path,
                "expected": "|".join(sorted(causes)),
                "requests": len(results),
                "ok": len(ok),
                "spans_out": len(found),
                "joined": len(joined) / max(1, len(found)),
                "cause_ok": len(right) / max(1, len(found)),
                "joined_and_cause_ok": len(both) / max(1, len(found)),
                "other_causes": wrong,
            }
        )
    return table


def run_load(demo_bin: Path, url: str, path: str, rate: int, seconds: float) -> dict:
    r = subprocess.run(
        [
            str(demo_bin),
            "load",
            "-url",
            url,
            "-scenario",
            path,
            "-rate",
            str(rate),
            "-concurrency",
            "16" if rate == 0 else "64",
            "-duration",
            f"{seconds:g}s",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(r.stdout)


class Puller:
    """Pulls /debug/pprof/trace back to back and throws the bytes away."""

    def __init__(self, url: str, window_s: float) -> None:
        self.url, self.window_s = url, window_s
        self.stop = threading.Event()
        self.bytes = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            with urllib.request.urlopen(
                f"{self.url}/debug/pprof/trace?seconds={self.window_s:g}", timeout=60
            ) as r:
                while chunk := r.read(1 << 16):
                    self.bytes += len(chunk)

    def __enter__(self) -> Puller:
        self.thread.start()
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=20, help="per scenario")
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--window", default="2s", help="gotrace window")
    ap.add_argument("--seconds", type=float, default=8, help="per load run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rate", type=int, default=0, help="0: closed loop of 16 workers")
    ap.add_argument("--load-path", default="/net?ms=1")
    ap.add_argument("--join-delay", help="goblock join_delay (default: window + 3s)")
    ap.add_argument("--only", help="comma-separated scenario prefixes, e.g. /gc,/select")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    window_s = float(args.window.rstrip("s"))

    build = build_demo()
    work = Path(tempfile.mkdtemp(prefix="gotrace-accuracy-"))
    otlp_port = free_port()
    demo = DemoService(
        run_dir=work / "demo",
        otlp_endpoint=f"http://127.0.0.1:{otlp_port}",
        service_name="demo-gotrace-bench",
        extra_env={"GOBLOCK_TRACE_SPANS": "1"},
    )
    demo.start()
    result: dict[str, Any] = {"window": args.window}
    try:
        if not args.skip_accuracy:
            out = work / "accuracy.jsonl"
            with Pipeline(
                pipeline_config(otlp_port, demo.port, out, args.window, args.join_delay),
                work,
                name="accuracy",
            ) as p:
                wait_pulling(p)
                table = accuracy(demo, out, args.requests, args.parallel, window_s + 4, args.only)
            result["accuracy"] = table
            print(f"accuracy (gotrace window {args.window}, {args.requests} requests each)")
            print(
                f"{'scenario':<22}{'expected':<18}{'spans':>6}{'joined':>8}"
                f"{'cause ok':>10}{'both':>8}  other causes"
            )
            for r in table:
                print(
                    f"{r['scenario']:<22}{r['expected']:<18}{r['spans_out']:>6}"
                    f"{r['joined']:>8.0%}{r['cause_ok']:>10.0%}"
                    f"{r['joined_and_cause_ok']:>8.0%}  {','.join(r['other_causes'])}"
                )
        if not args.skip_overhead:
            result["overhead"] = overhead(args, build.dwarf, demo, otlp_port, work, window_s)
    finally:
        demo.stop()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


def overhead(
    args: argparse.Namespace,
    demo_bin: Path,
    demo: DemoService,
    otlp_port: int,
    work: Path,
    window_s: float,
) -> dict:
    """One span pipeline (otlp → goblock → file) stays up for every mode, so the demo's
    exporter never reconnects; `gotrace` mode adds a second pipeline with only the
    gotrace receiver (its pulling and parsing is the whole difference)."""
    runs: dict[str, list[dict]] = {"off": [], "pull": [], "gotrace": []}
    demo_pid = demo.pid or 0
    spans_cfg = pipeline_config(otlp_port, None, work / "load-spans.jsonl", args.window)
    events_cfg = pipeline_config(0, demo.port, work / "load-events.jsonl", args.window)
    events_cfg["receivers"].pop("otlp")
    events_cfg["service"]["pipelines"]["traces"]["receivers"] = ["gotrace"]
    with Pipeline(spans_cfg, work, name="load-spans") as spans:
        assert spans.proc is not None
        for rnd in range(args.rounds):
            for mode in runs:
                with contextlib.ExitStack() as stack:
                    pids = [spans.proc.pid]
                    if mode == "gotrace":
                        ev = stack.enter_context(Pipeline(events_cfg, work, name=f"ev-{rnd}"))
                        assert ev.proc is not None
                        wait_pulling(ev)
                        pids.append(ev.proc.pid)
                    elif mode == "pull":
                        stack.enter_context(Puller(demo.url, window_s))
                    c0, p0, t0 = cpu_s(demo_pid), sum(map(cpu_s, pids)), time.monotonic()
                    res = run_load(demo_bin, demo.url, args.load_path, args.rate, args.seconds)
                    c1, p1, t1 = cpu_s(demo_pid), sum(map(cpu_s, pids)), time.monotonic()
                res["demo_cpu_us_per_req"] = (c1 - c0) / max(1, res["requests"]) * 1e6
                res["pipeline_cpu_share"] = (p1 - p0) / (t1 - t0)
                runs[mode].append(res)
                print(
                    f"  round {rnd + 1} {mode:<8} {res['throughput_rps']:8.0f} req/s  "
                    f"p99 {res['latency_ms']['p99']:6.2f} ms  "
                    f"demo CPU {res['demo_cpu_us_per_req']:6.1f} us/req",
                    file=sys.stderr,
                )

    def mean(xs: list[float]) -> float:
        """The median: one round hit by another process's burst must not decide."""
        return statistics.median(xs)

    summary = {}
    for mode, rs in runs.items():
        summary[mode] = {
            "throughput_rps": mean([r["throughput_rps"] for r in rs]),
            "p50_ms": mean([r["latency_ms"]["p50"] for r in rs]),
            "p99_ms": mean([r["latency_ms"]["p99"] for r in rs]),
            "demo_cpu_us_per_req": mean([r["demo_cpu_us_per_req"] for r in rs]),
            "pipeline_cpu_share": mean([r["pipeline_cpu_share"] for r in rs]),
            "errors": sum(r["errors"] for r in rs),
        }
    base = summary["off"]
    load = "closed loop, 16 workers" if args.rate == 0 else f"{args.rate} req/s offered"
    print(
        f"\noverhead (medians): {args.load_path}, {load}, "
        f"{args.seconds:g}s x {args.rounds} rounds, window {args.window}"
    )
    print(
        f"{'mode':<9}{'req/s':>9}{'x off':>7}{'p50 ms':>9}{'p99 ms':>9}{'x off':>7}"
        f"{'demo CPU us/req':>17}{'x off':>7}{'pipeline CPU':>14}"
    )
    for mode, s in summary.items():
        print(
            f"{mode:<9}{s['throughput_rps']:>9.0f}"
            f"{s['throughput_rps'] / base['throughput_rps']:>7.2f}"
            f"{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}{s['p99_ms'] / base['p99_ms']:>7.2f}"
            f"{s['demo_cpu_us_per_req']:>17.1f}"
            f"{s['demo_cpu_us_per_req'] / base['demo_cpu_us_per_req']:>7.2f}"
            f"{s['pipeline_cpu_share']:>13.0%}"
        )
    return summary


if __name__ == "__main__":
    sys.exit(main())
