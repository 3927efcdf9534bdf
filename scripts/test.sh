#!/usr/bin/env bash
# The test command of the README: set up (idempotent), lint, then the whole test suite.
# eBPF tests need root; with GOBLOCK_REQUIRE_EBPF=1 (as in CI) they fail instead of skipping.
# Lint problems fail the run too, but only after the tests have run and reported.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
.venv/bin/ruff check --quiet .
lint=$?
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
tests=$?
[ "$lint" -eq 0 ] || echo "ruff check failed (see above)" >&2
[ "$tests" -ne 0 ] && exit "$tests"
exit "$lint"
