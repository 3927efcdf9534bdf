#!/usr/bin/env bash
# Builds Jaeger (the v2 binary, cmd/jaeger) through the Go module proxy into build/bin/jaeger.
# Why from source: the tests need a real OTLP backend with a query API, and the CI machines
# reach only package registries (the Go module proxy serves Jaeger's module).
# Cached: skips when build/bin/jaeger already reports the wanted version.
# Env: JAEGER_VERSION (default v1.76.0), GO (default: go on PATH, else /usr/local/go/bin/go).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VERSION=${JAEGER_VERSION:-v1.76.0}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
OUT=$ROOT/build/bin/jaeger
STAMP=$ROOT/build/bin/.jaeger-version
log() { printf '[build_jaeger] %s\n' "$*" >&2; }

if [ -x "$OUT" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$VERSION" ]; then
  log "cached: $OUT ($VERSION)"
  exit 0
fi
mkdir -p "$ROOT/build/bin"
start=$(date +%s)
log "building github.com/jaegertracing/jaeger/cmd/jaeger@$VERSION (takes minutes cold)"
# `go install pkg@version` refuses Jaeger's module (its go.mod has a replace directive), so
# fetch the module through the proxy and build it as the main module, with its own go.sum:
# the exact dependency versions Jaeger's release was tested with.
# GOTOOLCHAIN=local: never fetch another toolchain because Jaeger's go.mod names one.
export GOTOOLCHAIN=${GOTOOLCHAIN:-local} GOFLAGS=-buildvcs=false
dir=$("$GO" mod download -json "github.com/jaegertracing/jaeger@$VERSION" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$dir" ] || { log "module download failed"; exit 1; }
(cd "$dir" && "$GO" build -trimpath -o "$OUT.tmp" ./cmd/jaeger)
mv -f "$OUT.tmp" "$OUT"
echo "$VERSION" > "$STAMP"
log "built $OUT in $(( $(date +%s) - start ))s"
