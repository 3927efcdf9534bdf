#!/usr/bin/env bash
# Soak: the demo service at a steady rate, observed by otel-goblock with every probe on
# (otlp + ebpf: syscalls, sched, tcp, go_runtime → memory_limiter → goblock → batch → file),
# for SOAK_MINUTES (default 30) at SOAK_RATE req/s (default: half the maximum it measures
# first, paced steps with every probe on), between two 120 s baselines without probes.
# Prints: sent vs received spans, events received/lost/dropped, RSS (sampled every 10 s;
# growth after warm-up must stay < 5 %), the app's p50/p99 on vs off (the median 60 s
# window p99 on over the off windows' must stay <= 1.05x, the overhead budget;
# --max-p99-ratio; whole-run p99s and the drift over the run are printed too).
# Exit 1 when a check fails. Needs root (eBPF). Extra arguments go to benchmarks/soak.py.
#
#   scripts/soak.sh
#   SOAK_MINUTES=5 SOAK_RATE=200 scripts/soak.sh --baseline-s 30
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
exec .venv/bin/python benchmarks/soak.py "$@"
