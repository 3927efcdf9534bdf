#!/usr/bin/env bash
# Long fuzz campaigns over every hypothesis fuzz/property test of the project (CI runs the
# same tests with their own bounded budgets). Each test's max_examples is multiplied by
# GOBLOCK_FUZZ_SCALE (default 20) through tests/hardening/fuzz_plugin.py, and tests that
# use tests/hardening/hypothesis_profiles.py run the "long" profile.
#
#   scripts/fuzz.sh                 # all campaigns, scale 20
#   GOBLOCK_FUZZ_SCALE=200 scripts/fuzz.sh tests/otlp/test_fuzz.py   # one, much longer
#
# Measured: the whole set at scale 1 takes ~30 s on the 2-core VM; time grows with the scale.
# Failures print the falsifying example and a reproduction blob (print_blob); the
# hypothesis database (.hypothesis/) keeps them for the next run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export HYPOTHESIS_PROFILE=long
export GOBLOCK_FUZZ_SCALE="${GOBLOCK_FUZZ_SCALE:-20}"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=(
    tests/otlp/test_fuzz.py          # OTLP receiver: random protobuf/JSON/gzip bodies, headers
    tests/otlp/test_otlpjson.py      # OTLP/JSON round trip (decode → encode → decode)
    tests/core/test_config_fuzz.py   # config loader
    tests/golang/test_fuzz.py        # Go ELF/DWARF/buildinfo reader on corrupted binaries
    tests/gotrace/test_gotrace_errors.py  # Go execution-trace parser on corrupt traces
    tests/exporters/test_exporterhelper.py  # exporterhelper accounting property
    tests/goblock/test_properties.py # goblock join properties
    tests/hardening/test_decode_fuzz.py     # BPF record decoders
  )
fi
echo "fuzz: scale x${GOBLOCK_FUZZ_SCALE}, profile ${HYPOTHESIS_PROFILE}: ${targets[*]}"
start=$(date +%s)
"$PY" -m pytest -q -p tests.hardening.fuzz_plugin -p no:randomly --timeout=0 \
  -m "not ebpf" "${targets[@]}"
echo "fuzz: done in $(( $(date +%s) - start ))s"
