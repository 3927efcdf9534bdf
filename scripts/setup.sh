#!/usr/bin/env bash
# Installs everything otel-goblock needs on a fresh Debian machine, idempotently:
# system packages and BCC (eBPF), the Python venv, and the Go builds (demo service, Jaeger).
# Safe to run again: each step skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
log() { printf '[setup] %s\n' "$*" >&2; }

# 1. eBPF toolchain: BCC from Debian, kernel headers + the links BCC needs (DESIGN §4)
if [ -x scripts/setup_ebpf.sh ] || [ -f scripts/setup_ebpf.sh ]; then
  bash scripts/setup_ebpf.sh
fi

# 2. Python venv with the project installed (editable) and its test tools
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.goblock-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing otel-goblock into .venv"
  .venv/bin/pip install -q --upgrade pip 'setuptools>=68' wheel
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi
# Debian's BCC module (the PyPI package named bcc is unrelated)
if [ -d /usr/lib/python3/dist-packages/bcc ]; then
  site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  [ -e "$site/bcc" ] || ln -s /usr/lib/python3/dist-packages/bcc "$site/bcc"
fi

# 3. Go builds (cached: each script skips when its sources are unchanged)
log "building the demo service (Go 1.26 and 1.27.3 variants) and Jaeger"
bash scripts/build_demo.sh --go127
bash scripts/build_jaeger.sh
log "ready ($ROOT)"
