"""Soak: the demo service under steady load, observed with every probe on, for N minutes.

    .venv/bin/python benchmarks/soak.py --minutes 30 --rate 100
    scripts/soak.sh                       # the same, defaults from env (SOAK_MINUTES, SOAK_RATE)

Phases, one demo service process throughout (its OTLP exporter points at one port):

1. off: a pipeline without eBPF (otlp → batch → file) takes the demo's spans while the
   demo's load driver runs `--baseline-s` at `--rate`: the app's latency without probes;
2. on: that pipeline is stopped (it drains) and the full one starts on the same port —
   otlp + ebpf (syscalls, sched, tcp, go_runtime: parks, gc, lineage, span markers) →
   memory_limiter → goblock → batch → file — and the load runs `--minutes` at `--rate`,
   the pipeline's RSS sampled every `--sample-s`;
3. the demo stops (its SDK flushes), the pipeline stops (drains), and the spans are counted.

Checks (printed; exit 1 when one fails):
- sent == received: the load driver's requests x spans per request (1-span scenarios only)
  == the demo's spans in the two output files (episode spans `goblock: …` excluded) —
  also == `otelcol_receiver_accepted_spans_total`, i.e. nothing refused on the way;
- RSS growth after warm-up (`--warmup-s`, default 20% of the run) < `--max-growth` (5%):
  median of the last 3 samples vs median of the first 3 after warm-up;
- the app's latency on vs off (p50, p99 of the load driver, printed as ratios): p99 on/off
  must stay <= `--max-p99-ratio` (1.5: the overhead budget this soak holds the agent to —
  benchmarks/goruntime_overhead.py measured 1.29x on a 1 ms endpoint, the soak's 5 ms
  endpoints should see less).

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

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from harness import DemoService, build_demo  # noqa: E402
from otel_goblock.receivers.otlp.otlpjson import decode_traces  # noqa: E402
from pipelines import Pipeline, free_port  # noqa: E402

# scenarios whose trace is exactly one span (the server span): requests x 1 = spans sent
SCENARIOS = "/sleep?ms=5,/mutex?ms=5,/chan?ms=5,/net?ms=5,/syscall?ms=5,/fsync?ms=5"


@dataclass
class SoakResult:
    minutes: float
    rate: float
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
    latency_off: dict[str, float] = field(default_factory=dict)
    latency_on: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def count_spans(path: Path) -> tuple[int, int]:
    """(app spans, goblock episode spans) in a file exporter's json output."""
    app = episodes = 0
    if not path.exists():
        return 0, 0
    with path.open() as f:
        for line in f:
            if '"resourceSpans"' not in line:
                continue
            for rs in decode_traces(line).resource_spans:
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        if s.name.startswith("goblock"):
                            episodes += 1
                        else:
                            app += 1
    return app, episodes


def pipeline_config(port: int, out: Path, demo_exe: Path | None) -> dict[str, Any]:
    """The full pipeline when `demo_exe` is given, else the eBPF-free baseline one."""
    receivers: dict[str, Any] = {"otlp": {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{port}"}}}}
    processors: dict[str, Any] = {"batch": {"timeout": "200ms"}}
    names = ["batch"]
    if demo_exe is not None:
        receivers["ebpf"] = {"targets": [{"exe": str(demo_exe)}]}  # every concern: defaults
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


def run_load(demo_url: str, binary: Path, rate: float, seconds: float) -> dict[str, Any]:
    conc = max(4, int(rate * 0.05) + 4)  # enough workers for 5-50 ms requests at `rate`
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
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 180,
    )
    return json.loads(out.stdout)


def run_soak(
    workdir: Path,
    minutes: float = 30.0,
    rate: float = 100.0,
    baseline_s: float = 60.0,
    sample_s: float = 10.0,
    warmup_s: float | None = None,
    max_growth: float = 0.05,
    max_p99_ratio: float = 1.5,
    log=print,
) -> SoakResult:
    res = SoakResult(minutes=minutes, rate=rate)
    binary = build_demo().dwarf
    port = free_port()
    off_out, on_out = workdir / "off.jsonl", workdir / "on.jsonl"
    demo = DemoService(run_dir=workdir / "demo", otlp_endpoint=f"http://127.0.0.1:{port}")
    off = Pipeline(pipeline_config(port, off_out, None), workdir, name="off").start()
    on: Pipeline | None = None
    try:
        demo.start()
        log(f"soak: off baseline {baseline_s:.0f}s at {rate:.0f} req/s")
        rep = run_load(demo.url, binary, rate, baseline_s)
        res.requests_off, res.errors = rep["requests"], rep["errors"]
        res.latency_off = rep["latency_ms"]
        time.sleep(1.0)  # the demo's SDK exports on a short schedule; the rest retries
        res.spans_accepted = int(off.metrics().get("otelcol_receiver_accepted_spans_total", 0))
        off.stop()
        on = Pipeline(pipeline_config(port, on_out, binary), workdir, name="on")
        on.start(timeout=90)
        assert on.proc is not None
        proc = psutil.Process(on.proc.pid)
        log(f"soak: on {minutes:g} min at {rate:.0f} req/s, RSS every {sample_s:g}s")
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(sample_s):
                res.rss_mib.append(proc.memory_info().rss / 2**20)
                if len(res.rss_mib) % 6 == 0:
                    log(f"  {len(res.rss_mib) * sample_s:.0f}s: RSS {res.rss_mib[-1]:.0f} MiB")

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            rep = run_load(demo.url, binary, rate, minutes * 60)
        finally:
            stop.set()
            sampler.join()
        res.requests_on = rep["requests"]
        res.errors += rep["errors"]
        res.latency_on = rep["latency_ms"]
        demo.stop()  # the SDK flushes what it holds
        m = on.metrics()
        res.events_received = m.get("goblock_events_received_total", 0.0)
        res.events_lost = m.get("goblock_events_lost_total", 0.0)
        res.events_dropped = m.get("goblock_events_dropped_total", 0.0)
        on.stop()
        res.spans_accepted += int(m.get("otelcol_receiver_accepted_spans_total", 0.0))
    finally:
        demo.stop()
        off.stop()
        if on is not None:
            on.stop()
    a_off, _ = count_spans(off_out)
    a_on, res.episode_spans = count_spans(on_out)
    res.spans_written = a_off + a_on
    res.spans_expected = res.requests_off + res.requests_on
    judge(res, sample_s, warmup_s, max_growth, max_p99_ratio)
    return res


def judge(
    res: SoakResult,
    sample_s: float,
    warmup_s: float | None,
    max_growth: float,
    max_p99_ratio: float = 1.5,
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
    off, on = res.latency_off.get("p99", 0.0), res.latency_on.get("p99", 0.0)
    if off and on / off > max_p99_ratio:
        res.failures.append(
            f"app p99 {off:.2f} → {on:.2f} ms with the probes on ({on / off:.2f}x > "
            f"{max_p99_ratio:g}x)"
        )


def summary(res: SoakResult) -> str:
    def ratio(k: str) -> str:
        a, b = res.latency_off.get(k, 0.0), res.latency_on.get(k, 0.0)
        return f"{k} {a:.2f} → {b:.2f} ms ({b / a:.2f}x)" if a else f"{k} n/a"

    rss = res.rss_mib or [0.0]
    growth = "n/a (run too short)" if res.rss_growth is None else f"{res.rss_growth:+.1%}"
    lines = [
        f"soak: {res.minutes:g} min at {res.rate:g} req/s, every probe on",
        f"  spans: sent {res.spans_expected} (requests off {res.requests_off} + on "
        f"{res.requests_on}), received {res.spans_written}, episode spans added "
        f"{res.episode_spans}",
        f"  events: received {res.events_received:.0f}, lost {res.events_lost:.0f}, "
        f"dropped {res.events_dropped:.0f}",
        f"  RSS: first {rss[0]:.0f} MiB, max {max(rss):.0f} MiB, last {rss[-1]:.0f} MiB, "
        f"growth after warm-up {growth}",
        f"  app latency off → on: {ratio('p50')}, {ratio('p99')}",
        "  result: " + ("OK" if res.ok else "FAIL: " + "; ".join(res.failures)),
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 30)))
    ap.add_argument("--rate", type=float, default=float(os.environ.get("SOAK_RATE", 100)))
    ap.add_argument("--baseline-s", type=float, default=60.0)
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--warmup-s", type=float, default=None)
    ap.add_argument("--max-growth", type=float, default=0.05)
    ap.add_argument("--max-p99-ratio", type=float, default=1.5)
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
        sample_s=args.sample_s,
        warmup_s=args.warmup_s,
        max_growth=args.max_growth,
        max_p99_ratio=args.max_p99_ratio,
    )
    print(summary(res))
    (args.workdir / "soak.json").write_text(json.dumps(res.__dict__, indent=1, default=str))
    return 0 if res.ok else 1


if __name__ == "__main__":
    sys.exit(main())
