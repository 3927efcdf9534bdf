"""Soak: the demo service under steady load, observed with every probe on, for N minutes.

    .venv/bin/python benchmarks/soak.py --minutes 30            # rate: half the measured max
    .venv/bin/python benchmarks/soak.py --minutes 30 --rate 100 # a fixed rate
    scripts/soak.sh                       # the same, defaults from env (SOAK_MINUTES, SOAK_RATE)
    .venv/bin/python benchmarks/soak.py --pacing 1ms/1ms # the full pipeline with cpu_pacing

Phases, one demo service process throughout (its OTLP exporter points at one port):

0. max (unless `--rate` is given): the full pipeline (below) observes the demo while the
   load driver runs paced steps of `--max-s` (doubling, then bisecting): the highest rate
   at which nothing falls behind — every span accepted, no event lost or dropped, the rate
   reached (find_max). The soak runs at half of it, on a restarted demo;
1. off: a pipeline without eBPF (otlp → batch → file) takes the demo's spans while the
   demo's load driver runs `--baseline-s` at the rate: the app's latency without probes;
2. on: that pipeline is stopped (it drains) and the full one starts on the same port —
   otlp + ebpf (syscalls, sched, tcp, go_runtime: parks, gc, lineage, span markers) →
   memory_limiter → goblock → batch → file — and the load runs `--minutes` at the rate,
   the pipeline's RSS sampled every `--sample-s`;
3. off again for `--baseline-s` (so a drift of the machine over the run does not pass for
   the probes' cost: "off" is both windows together);
4. the demo stops (its SDK flushes), the pipelines stop (drain), and the spans are counted.

Checks (printed; exit 1 when one fails):
- sent == received: the load driver's requests x spans per request (1-span scenarios only)
  == the demo's spans in the two output files (episode spans `goblock: …` excluded) —
  also == `otelcol_receiver_accepted_spans_total`, i.e. nothing refused on the way;
- RSS growth after warm-up (`--warmup-s`, default 20% of the run) < `--max-growth` (5%):
  median of the last 3 samples vs median of the first 3 after warm-up;
- the app's latency on vs off (p50, p99 of the load driver, printed as ratios; off = the
  mean of the two off windows), and the p99 of every `--window-s` (60 s) window of each
  run: the median on-window p99 over the mean off-window p99 must stay <=
  `--max-p99-ratio` (default 1.05, the overhead budget of issue 4). Windows, because a
  30-minute p99 set against 2-minute ones charges any burst of machine noise during the
  long run (a few minutes of it is > 1 % of the run) to the probes; the whole-run p99s
  are printed next to it, and the on windows' first vs last fifth shows a drift.

Needs root (eBPF) and the demo build (scripts/build_demo.sh; done here if missing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from harness import DemoService, build_demo  # noqa: E402
from pipelines import Pipeline, free_port  # noqa: E402

# scenarios whose trace is exactly one span (the server span): requests x 1 = spans sent
SCENARIOS = "/sleep?ms=5,/mutex?ms=5,/chan?ms=5,/net?ms=5,/syscall?ms=5,/fsync?ms=5"


@dataclass
class SoakResult:
    minutes: float
    rate: float
    max_rate: float | None = None  # measured in phase 0 (None: --rate was given)
    pacing: str | None = None  # service.cpu_pacing of the full pipeline, "run/rest"
    max_steps: list[dict[str, Any]] = field(default_factory=list)
    requests_off: int = 0
    requests_on: int = 0
    errors: int = 0
    spans_expected: int = 0
    spans_written: int = 0
    spans_accepted: int = 0
    episode_spans: int = 0
    events_received: float = 0.0
    events_lost: float = 0.0
    events_dropped: float = 0.0
    rss_mib: list[float] = field(default_factory=list)
    rss_growth: float | None = None
    latency_off: dict[str, float] = field(default_factory=dict)  # mean of the two windows
    latency_off_windows: list[dict[str, float]] = field(default_factory=list)
    latency_on: dict[str, float] = field(default_factory=dict)
    # p99 per scenario (ms): off as the mean of its windows
    p99_off: dict[str, float] = field(default_factory=dict)
    p99_on: dict[str, float] = field(default_factory=dict)
    p99_off_windows: list[dict[str, float]] = field(default_factory=list)
    # the app's p99 per `window_s` (ms), off windows and the on run in order: the like-for-
    # like comparison (a 30-minute p99 against 1-minute ones would charge every burst of
    # machine noise during the long run to the probes) and the drift over the run
    p99_off_minutes: list[float] = field(default_factory=list)
    p99_on_minutes: list[float] = field(default_factory=list)
    p99_ratio: float | None = None  # median on minute / mean off minute
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def count_spans(path: Path) -> tuple[int, int]:
    """(app spans, goblock episode spans) in a file exporter's json output. Straight from
    the JSON (no protobuf objects): at half the maximum rate the file holds millions."""
    app = episodes = 0
    if not path.exists():
        return 0, 0
    with path.open("rb") as f:
        for line in f:
            if b'"resourceSpans"' not in line:
                continue
            for rs in orjson.loads(line).get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for sp in ss.get("spans", []):
                        if sp.get("name", "").startswith("goblock"):
                            episodes += 1
                        else:
                            app += 1
    return app, episodes


def pipeline_config(port: int, out: Path, demo: Path | int | None) -> dict[str, Any]:
    """The full pipeline when `demo` is given (its pid, or its executable when it must be
    re-attached across restarts), else the eBPF-free baseline one. By pid in the soak: the
    load driver is the same executable, and probing it too would charge the probes' cost
    twice to the latency it measures."""
    receivers: dict[str, Any] = {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{port}"}}}}
    processors: dict[str, Any] = {"batch": {"timeout": "200ms"}}
    names = ["batch"]
    if demo is not None:
        target = {"pid": demo} if isinstance(demo, int) else {"exe": str(demo)}
        receivers["ebpf"] = {"targets": [target]}  # every concern: defaults
        processors = {
            "memory_limiter": {"check_interval": "1s", "limit_mib": 1024},
            "goblock": {},
            **processors,
        }
        names = ["memory_limiter", "goblock", "batch"]
    return {
        "receivers": receivers,
        "processors": processors,
        # no rotation: every line is counted at the end
        "exporters": {"file": {"path": str(out), "rotation": {"max_megabytes": 0}}},
        "service": {
            "pipelines": {
                "traces": {
                    "receivers": list(receivers),
                    "processors": names,
                    "exporters": ["file"],
                }
            }
        },
    }


def run_load(
    demo_url: str,
    binary: Path,
    rate: float,
    seconds: float,
    concurrency: int = 0,
    window_s: float = 0.0,
) -> dict[str, Any]:
    # enough workers for 5-50 ms requests at `rate` (closed loop: `concurrency`)
    conc = concurrency or max(4, int(rate * 0.05) + 4)
    out = subprocess.run(
        [
            str(binary),
            "load",
            "-url",
            demo_url,
            "-scenario",
            SCENARIOS,
            "-rate",
            str(rate),
            "-concurrency",
            str(conc),
            "-duration",
            f"{seconds}s",
            "-window",
            f"{window_s}s",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 180,
    )
    return json.loads(out.stdout)


def find_max(
    demo: DemoService,
    binary: Path,
    p: Pipeline,
    step_s: float,
    concurrency: int,
    log=print,
    start: float = 100.0,
) -> tuple[float, list[dict[str, Any]]]:
    """The highest paced rate the observed demo and the full pipeline sustain together:
    a step keeps up when the load driver reaches its rate without errors, the pipeline
    accepts every span of the step, and no event is lost or dropped. Doubling from
    `start` until a step fails, then two bisections. (A closed-loop maximum would measure
    the app alone: at half of it the pipeline, sharing the cores, fell behind.)"""
    time.sleep(2.0)  # probes attached, BCC compiled: measure the steady state
    steps: list[dict[str, Any]] = []

    def keeps_up(rate: float) -> bool:
        m0 = p.metrics()
        rep = run_load(demo.url, binary, rate, step_s, concurrency=concurrency)
        time.sleep(2.0)  # the demo's SDK exports on a short schedule
        m1 = p.metrics()

        def delta(k: str) -> float:
            return m1.get(k, 0.0) - m0.get(k, 0.0)

        step = {
            "rate": rate,
            "throughput": rep["throughput_rps"],
            "errors": rep["errors"],
            "spans_missing": rep["requests"] - delta("otelcol_receiver_accepted_spans_total"),
            "events_lost": delta("goblock_events_lost_total"),
            "events_dropped": delta("goblock_events_dropped_total"),
            "p99_ms": rep["latency_ms"]["p99"],
        }
        step["ok"] = (
            rep["throughput_rps"] >= 0.95 * rate
            and not step["errors"]
            and step["spans_missing"] <= 0
            and not step["events_lost"]
            and not step["events_dropped"]
        )
        steps.append(step)
        log(
            f"soak: max: {rate:.0f} req/s → {step['throughput']:.0f}, p99 "
            f"{step['p99_ms']:.1f} ms, spans missing {step['spans_missing']:.0f}, events "
            f"lost {step['events_lost']:.0f} dropped {step['events_dropped']:.0f}: "
            + ("keeps up" if step["ok"] else "falls behind")
        )
        return bool(step["ok"])

    good, bad = 0.0, start
    while keeps_up(bad):
        good, bad = bad, bad * 2
    for _ in range(2):
        mid = (good + bad) / 2
        if keeps_up(mid):
            good = mid
        else:
            bad = mid
    return good, steps


def _p99s(rep: dict[str, Any]) -> dict[str, float]:
    return {k.split("?")[0]: v["p99"] for k, v in rep.get("per_scenario_latency_ms", {}).items()}


def run_soak(
    workdir: Path,
    minutes: float = 30.0,
    rate: float | None = None,
    baseline_s: float = 120.0,
    window_s: float = 60.0,
    sample_s: float = 10.0,
    warmup_s: float | None = None,
    max_growth: float = 0.05,
    max_p99_ratio: float = 1.05,
    max_s: float = 10.0,
    max_concurrency: int = 64,
    pacing: str | None = None,
    log=print,
) -> SoakResult:
    res = SoakResult(minutes=minutes, rate=rate or 0.0, pacing=pacing)
    binary = build_demo().dwarf
    port = free_port()
    outs = {name: workdir / f"{name}.jsonl" for name in ("max", "off", "on", "off2")}
    counted = ("off", "on", "off2")  # the max phase may overload on purpose: not counted
    demo = DemoService(run_dir=workdir / "demo", otlp_endpoint=f"http://127.0.0.1:{port}")
    running: list[Pipeline] = []

    def pipeline(name: str) -> Pipeline:
        """Stop the one before (it drains), start `name` on the demo's port."""
        while running:
            running.pop().stop()
        full = name in ("max", "on")
        cfg = pipeline_config(port, outs[name], demo.pid if full else None)
        if full and pacing:
            run, rest = pacing.split("/")
            cfg["service"]["cpu_pacing"] = {"enabled": True, "run": run, "rest": rest}
        p = Pipeline(cfg, workdir, name=name)
        p.start(timeout=90 if full else 20)
        running.append(p)
        return p

    def accepted(p: Pipeline) -> int:
        return int(p.metrics().get("otelcol_receiver_accepted_spans_total", 0))

    def off_window(name: str, last: bool = False) -> None:
        log(f"soak: {name}: no probes, {baseline_s:.0f}s at {res.rate:.0f} req/s")
        p = pipeline(name)
        rep = run_load(demo.url, binary, res.rate, baseline_s, window_s=window_s)
        res.p99_off_minutes += [w["latency_ms"]["p99"] for w in rep.get("windows", [])]
        res.requests_off += rep["requests"]
        res.errors += rep["errors"]
        res.latency_off_windows.append(rep["latency_ms"])
        res.p99_off_windows.append(_p99s(rep))
        if last:
            demo.stop()  # the SDK flushes what it holds
        time.sleep(1.0)  # the demo's SDK exports on a short schedule; the rest retries
        res.spans_accepted += accepted(p)

    try:
        demo.start()
        if rate is None:
            res.max_rate, res.max_steps = find_max(
                demo, binary, pipeline("max"), max_s, max_concurrency, log
            )
            res.rate = round(res.max_rate / 2)
            log(f"soak: max {res.max_rate:.0f} req/s → soak at {res.rate:.0f} req/s")
            # a fresh demo: spans its SDK still holds from an overloaded step must not reach
            # the windows that are counted
            demo.stop()
            running.pop().stop()
            demo.start()
        off_window("off")
        on = pipeline("on")
        assert on.proc is not None
        proc = psutil.Process(on.proc.pid)
        log(f"soak: on {minutes:g} min at {res.rate:.0f} req/s, RSS every {sample_s:g}s")
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(sample_s):
                res.rss_mib.append(proc.memory_info().rss / 2**20)
                if len(res.rss_mib) % 6 == 0:
                    log(f"  {len(res.rss_mib) * sample_s:.0f}s: RSS {res.rss_mib[-1]:.0f} MiB")

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            rep = run_load(demo.url, binary, res.rate, minutes * 60, window_s=window_s)
        finally:
            stop.set()
            sampler.join()
        res.requests_on = rep["requests"]
        res.errors += rep["errors"]
        res.latency_on = rep["latency_ms"]
        res.p99_on = _p99s(rep)
        res.p99_on_minutes = [w["latency_ms"]["p99"] for w in rep.get("windows", [])]
        time.sleep(1.0)
        m = on.metrics()
        res.events_received = m.get("goblock_events_received_total", 0.0)
        res.events_lost = m.get("goblock_events_lost_total", 0.0)
        res.events_dropped = m.get("goblock_events_dropped_total", 0.0)
        res.spans_accepted += int(m.get("otelcol_receiver_accepted_spans_total", 0.0))
        off_window("off2", last=True)
    finally:
        demo.stop()
        while running:
            running.pop().stop()
    res.latency_off = {
        k: statistics.fmean(w[k] for w in res.latency_off_windows)
        for k in res.latency_off_windows[0]
    }
    res.p99_off = {
        k: statistics.fmean(w[k] for w in res.p99_off_windows if k in w)
        for k in res.p99_off_windows[0]
    }
    log("soak: counting the spans in the output files")
    for name in counted:
        app, episodes = count_spans(outs[name])
        res.spans_written += app
        if name == "on":
            res.episode_spans += episodes
    res.spans_expected = res.requests_off + res.requests_on
    judge(res, sample_s, warmup_s, max_growth, max_p99_ratio)
    return res


def judge(
    res: SoakResult,
    sample_s: float,
    warmup_s: float | None,
    max_growth: float,
    max_p99_ratio: float = 1.05,
) -> None:
    if res.errors:
        res.failures.append(f"{res.errors} load requests failed")
    if res.spans_written != res.spans_expected:
        res.failures.append(
            f"sent {res.spans_expected} spans, received {res.spans_written} "
            f"({res.spans_written - res.spans_expected:+d})"
        )
    if res.spans_accepted != res.spans_written:
        res.failures.append(
            f"the receivers accepted {res.spans_accepted} spans, the files hold {res.spans_written}"
        )
    warm = warmup_s if warmup_s is not None else res.minutes * 60 * 0.2
    after = res.rss_mib[int(warm // sample_s) :]
    if len(after) >= 6:
        first, last = statistics.median(after[:3]), statistics.median(after[-3:])
        res.rss_growth = (last - first) / first
        if res.rss_growth >= max_growth:
            res.failures.append(
                f"RSS grew {res.rss_growth:.1%} after warm-up ({first:.0f} → {last:.0f} MiB)"
            )
    if res.p99_off_minutes and res.p99_on_minutes:
        # the same estimator on both sides: a window's p99, typical (median) over the run
        off = statistics.fmean(res.p99_off_minutes)
        on = statistics.median(res.p99_on_minutes)
        what = f"median {len(res.p99_on_minutes)}-window"
    else:
        off, on = res.latency_off.get("p99", 0.0), res.latency_on.get("p99", 0.0)
        what = "whole-run"
    res.p99_ratio = on / off if off else None
    if res.p99_ratio is not None and res.p99_ratio > max_p99_ratio:
        res.failures.append(
            f"app p99 ({what}) {off:.2f} → {on:.2f} ms with the probes on "
            f"({res.p99_ratio:.3f}x > {max_p99_ratio:g}x)"
        )


def _spread(v: list[float]) -> str:
    """min / median / max of the on run's window p99s, and its first vs last fifth: a
    latency that creeps up over a soak shows here even when the median looks fine."""
    if not v:
        return "n/a"
    k = max(1, len(v) // 5)
    return (
        f"min {min(v):.2f} median {statistics.median(v):.2f} max {max(v):.2f} ms over "
        f"{len(v)} windows; first fifth {statistics.median(v[:k]):.2f}, last fifth "
        f"{statistics.median(v[-k:]):.2f} ms"
    )


def summary(res: SoakResult) -> str:
    def ratio(k: str) -> str:
        a, b = res.latency_off.get(k, 0.0), res.latency_on.get(k, 0.0)
        return f"{k} {a:.2f} → {b:.2f} ms ({b / a:.2f}x)" if a else f"{k} n/a"

    rss = res.rss_mib or [0.0]
    growth = "n/a (run too short)" if res.rss_growth is None else f"{res.rss_growth:+.1%}"
    lines = [
        f"soak: {res.minutes:g} min at {res.rate:g} req/s, every probe on"
        + (f" (half the measured max {res.max_rate:.0f} req/s)" if res.max_rate else "")
        + (f", cpu_pacing {res.pacing}" if res.pacing else ""),
        f"  spans: sent {res.spans_expected} (requests off {res.requests_off} + on "
        f"{res.requests_on}), received {res.spans_written}, episode spans added "
        f"{res.episode_spans}",
        f"  events: received {res.events_received:.0f}, lost {res.events_lost:.0f}, "
        f"dropped {res.events_dropped:.0f}",
        f"  RSS: first {rss[0]:.0f} MiB, max {max(rss):.0f} MiB, last {rss[-1]:.0f} MiB, "
        f"growth after warm-up {growth}",
        f"  app latency off → on: {ratio('p50')}, {ratio('p99')} (off p99 per window: "
        + ", ".join(f"{w.get('p99', 0.0):.2f}" for w in res.latency_off_windows)
        + " ms)",
        "  app p99 per window (the criterion: median on / mean off"
        + (f" = {res.p99_ratio:.3f}x" if res.p99_ratio is not None else "")
        + "): off "
        + ", ".join(f"{v:.2f}" for v in res.p99_off_minutes)
        + " ms; on "
        + _spread(res.p99_on_minutes),
        "  p99 per scenario off → on (ms): "
        + ", ".join(
            f"{k} {v:.2f} → {res.p99_on.get(k, 0.0):.2f}" for k, v in sorted(res.p99_off.items())
        ),
        "  result: " + ("OK" if res.ok else "FAIL: " + "; ".join(res.failures)),
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 30)))
    env_rate = os.environ.get("SOAK_RATE")
    ap.add_argument(
        "--rate",
        type=float,
        default=float(env_rate) if env_rate else None,
        help="req/s (default: half the maximum measured in phase 0)",
    )
    ap.add_argument("--max-s", type=float, default=10.0, help="each step of phase 0")
    ap.add_argument("--max-concurrency", type=int, default=64, help="load workers in phase 0")
    ap.add_argument("--baseline-s", type=float, default=120.0, help="each of the two off runs")
    ap.add_argument("--window-s", type=float, default=60.0, help="p99 per window of this length")
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--warmup-s", type=float, default=None)
    ap.add_argument("--max-growth", type=float, default=0.05)
    ap.add_argument("--max-p99-ratio", type=float, default=1.05)
    ap.add_argument(
        "--pacing",
        default=os.environ.get("SOAK_PACING") or None,
        help="service.cpu_pacing of the full pipeline as RUN/REST, e.g. 1ms/1ms (default off)",
    )
    ap.add_argument("--workdir", type=Path, default=REPO / ".cache" / "soak")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for f in args.workdir.glob("*.jsonl"):
        f.unlink()
    res = run_soak(
        args.workdir,
        minutes=args.minutes,
        rate=args.rate,
        baseline_s=args.baseline_s,
        window_s=args.window_s,
        sample_s=args.sample_s,
        warmup_s=args.warmup_s,
        max_growth=args.max_growth,
        max_p99_ratio=args.max_p99_ratio,
        max_s=args.max_s,
        max_concurrency=args.max_concurrency,
        pacing=args.pacing,
    )
    print(summary(res))
    (args.workdir / "soak.json").write_text(json.dumps(res.__dict__, indent=1, default=str))
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
