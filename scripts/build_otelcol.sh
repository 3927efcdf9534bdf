#!/usr/bin/env bash
# Builds the benchmark's Go binaries into build/bin/:
#   otelcol-bench  the reference OpenTelemetry Collector (benchmarks/otelcol: otlp receiver,
#                  batch + memory_limiter processors, otlp_grpc exporter; collector v0.165.0/v1.71.0)
#   otlp-load      the OTLP/gRPC load generator   (benchmarks/loadtools/cmd/otlp-load)
#   otlp-sink      the counting OTLP/gRPC sink    (benchmarks/loadtools/cmd/otlp-sink)
# Why from source: CI machines reach only package registries; the Go module proxy serves the
# collector's modules, and the committed go.mod/go.sum pin exactly what is compared.
# Cached: a binary is rebuilt only when its sources, go.mod/go.sum or the Go version change
# (stamp = sha256 of those). Cold build of otelcol-bench takes minutes; warm is ~instant.
# Env: GO (default: go on PATH, else /usr/local/go/bin/go).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
# GOTOOLCHAIN=local: never fetch another toolchain; the installed Go 1.26 satisfies go.mod.
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=-buildvcs=false
log() { printf '[build_otelcol] %s\n' "$*" >&2; }
mkdir -p "$ROOT/build/bin"

# build <module dir> <package> <output name>
build() {
  local mod=$1 pkg=$2 name=$3 out=$ROOT/build/bin/$3 stamp=$ROOT/build/bin/.$3.stamp want start
  want=$( { "$GO" version; find "$mod" -name '*.go' -o -name 'go.mod' -o -name 'go.sum' | sort \
            | xargs sha256sum; } | sha256sum | cut -d' ' -f1)
  if [ -x "$out" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "cached: $out"
    return 0
  fi
  start=$(date +%s)
  log "building $name from $mod ($pkg)"
  (cd "$mod" && "$GO" mod download && "$GO" build -trimpath -o "$out.tmp" "$pkg")
  mv -f "$out.tmp" "$out"
  echo "$want" > "$stamp"
  log "built $out in $(( $(date +%s) - start ))s"
}

build "$ROOT/benchmarks/loadtools" ./cmd/otlp-sink otlp-sink
build "$ROOT/benchmarks/loadtools" ./cmd/otlp-load otlp-load
build "$ROOT/benchmarks/otelcol" . otelcol-bench
