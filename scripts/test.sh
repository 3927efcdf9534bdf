#!/usr/bin/env bash
# The test command of the README: set up (idempotent), lint, then the whole test suite.
# eBPF tests need root; with GOBLOCK_REQUIRE_EBPF=1 (as in CI) they fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
