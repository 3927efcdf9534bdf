#!/usr/bin/env bash
# Builds the demo service (examples/demo-service) into build/:
#   build/demo-service           with DWARF and symbol table (the default Go build)
#   build/demo-service-stripped  -ldflags="-s -w": no DWARF, no .symtab (stripped-binary tests)
# and, with --go127, the same two under build/go1.27/ built by GOTOOLCHAIN=go1.27.3
# (the module proxy serves that toolchain; it is the only other Go allowed on CI).
# Idempotent and cached: skips a variant whose sources (go.mod, go.sum, *.go), toolchain
# and this script (its flags) hash to the value recorded beside the binaries.
set -euo pipefail
SELF=$(readlink -f "$0")
cd "$(dirname "$0")/.."
ROOT=$PWD
SRC=$ROOT/examples/demo-service
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
log() { printf '[build_demo] %s\n' "$*" >&2; }

want_go127=0
for a in "$@"; do
  case $a in
    --go127) want_go127=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) log "unknown argument: $a"; exit 2 ;;
  esac
done

# build_variant OUTDIR TOOLCHAIN
build_variant() {
  local out=$1 toolchain=$2
  mkdir -p "$out"
  local gover
  gover=$(cd "$SRC" && GOTOOLCHAIN=$toolchain "$GO" env GOVERSION)
  local hash
  # the script itself is hashed too: a change of build flags must rebuild
  # examples/goblocktrace is built in through go.mod's replace directive: hash it too
  hash=$( { echo "$gover"; cat "$SELF" "$SRC/go.mod" "$SRC/go.sum" "$ROOT/examples/goblocktrace/go.mod"; \
            find "$SRC" "$ROOT/examples/goblocktrace" -name '*.go' ! -name '*_test.go' -print0 \
            | sort -z | xargs -0 cat; } | sha256sum | cut -d' ' -f1)
  if [ -x "$out/demo-service" ] && [ -x "$out/demo-service-stripped" ] \
     && [ "$(cat "$out/.demo-service.hash" 2>/dev/null)" = "$hash" ]; then
    log "cached: $out/demo-service{,-stripped} ($gover)"
    return 0
  fi
  local start=$SECONDS
  # -mod=readonly: the committed go.sum must cover every dependency (reproducible builds);
  # -trimpath: binaries do not depend on where the repository is checked out.
  (cd "$SRC" && export GOTOOLCHAIN=$toolchain GOFLAGS="-mod=readonly -buildvcs=false" \
     && "$GO" build -trimpath -o "$out/demo-service.tmp" . \
     && "$GO" build -trimpath -ldflags="-s -w" -o "$out/demo-service-stripped.tmp" .)
  mv -f "$out/demo-service.tmp" "$out/demo-service"
  mv -f "$out/demo-service-stripped.tmp" "$out/demo-service-stripped"
  echo "$hash" > "$out/.demo-service.hash"
  log "built $out/demo-service{,-stripped} ($gover) in $((SECONDS - start))s"
}

build_variant "$ROOT/build" "${GOTOOLCHAIN:-local}"
if [ "$want_go127" = 1 ]; then
  build_variant "$ROOT/build/go1.27" go1.27.3
fi
