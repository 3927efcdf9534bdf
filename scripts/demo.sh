#!/usr/bin/env bash
# The main job of the README: the Go demo service observed by otel-goblock; its spans
# leave enriched into out/demo-traces.jsonl and a report is printed at the end.
#
#   scripts/demo.sh                # every scenario, a few requests each
#   DEMO_SCENARIOS="/sleep?ms=50,/net?ms=80" scripts/demo.sh
#
# Run as root for the eBPF receiver (without it, spans pass through unenriched).
# When Jaeger answers on 127.0.0.1 (scripts/services.sh start jaeger; ports as there:
# JAEGER_QUERY_PORT 16686, JAEGER_OTLP_GRPC_PORT 14317), the traces go there too
# (examples/demo-jaeger.yaml, a second --config) and the link to the slowest trace is
# printed; GOBLOCK_DEMO_JAEGER=off leaves Jaeger out.
# Ports (loopback only): OTLP gRPC 4317, demo 8080, self-telemetry 8888; override with
# GOBLOCK_DEMO_OTLP_PORT, DEMO_PORT, GOBLOCK_DEMO_METRICS_PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup.sh

export GOBLOCK_RUN_DIR=${GOBLOCK_RUN_DIR:-$ROOT/.cache/demo}
export GOBLOCK_DEMO_OTLP_PORT=${GOBLOCK_DEMO_OTLP_PORT:-4317}
export GOBLOCK_DEMO_OUT=${GOBLOCK_DEMO_OUT:-$ROOT/out/demo-traces.jsonl}
export DEMO_PORT=${DEMO_PORT:-8080}
CONFIG=${GOBLOCK_DEMO_CONFIG:-examples/demo-config.yaml}
SCENARIOS=${DEMO_SCENARIOS:-/sleep?ms=50,/mutex?ms=50,/chan?ms=50,/select?ms=50,/net?ms=50,/downstream?ms=50,/fsync?ms=50,/syscall?ms=50,/cpu?ms=50&spinners=2,/gc,/fanout?ms=50,/grpc/unary,/grpc/flow?ms=10&kib=1024,/grpc/keepalive}
mkdir -p "$GOBLOCK_RUN_DIR" "$(dirname "$GOBLOCK_DEMO_OUT")"
rm -f "$GOBLOCK_DEMO_OUT"
log() { printf '\n[demo] %s\n' "$*" >&2; }
: "${JAEGER_QUERY_PORT:=16686}" "${JAEGER_OTLP_GRPC_PORT:=14317}"
export JAEGER_QUERY_PORT JAEGER_OTLP_GRPC_PORT
jaeger_up() (
  exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$JAEGER_QUERY_PORT" || exit 1
  printf 'GET /api/services HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 5 line <&3 || exit 1
  [[ $line == HTTP/1.?" 200"* ]] && exec 4<>"/dev/tcp/127.0.0.1/$JAEGER_OTLP_GRPC_PORT"
)
config_args=(--config "$CONFIG")
jaeger_url=
if [ "${GOBLOCK_DEMO_JAEGER:-auto}" != off ] && jaeger_up; then
  config_args+=(--config examples/demo-jaeger.yaml)
  jaeger_url=http://127.0.0.1:$JAEGER_QUERY_PORT
fi

pipeline_pid=
cleanup() {
  OTEL_EXPORTER_OTLP_ENDPOINT=unused bash scripts/services.sh stop demo >/dev/null 2>&1 || true
  if [ -n "$pipeline_pid" ] && kill -0 "$pipeline_pid" 2>/dev/null; then
    kill -TERM "$pipeline_pid"; wait "$pipeline_pid" || true
  fi
}
trap cleanup EXIT

log "starting the demo service on 127.0.0.1:$DEMO_PORT, exporting to the pipeline"
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$GOBLOCK_DEMO_OTLP_PORT \
  bash scripts/services.sh start demo
DEMO_PID=$(cat "$GOBLOCK_RUN_DIR/demo.pid")
export DEMO_PID

log "starting otel-goblock (${config_args[*]}), observing pid $DEMO_PID${jaeger_url:+, exporting to Jaeger too}; its log: $GOBLOCK_RUN_DIR/pipeline.log"
.venv/bin/otel-goblock run "${config_args[@]}" 2> "$GOBLOCK_RUN_DIR/pipeline.log" &
pipeline_pid=$!
for _ in $(seq 1 150); do
  grep -q "pid $DEMO_PID: Go runtime probes attached\|pipeline runs without it" \
    "$GOBLOCK_RUN_DIR/pipeline.log" 2>/dev/null && break
  kill -0 "$pipeline_pid" 2>/dev/null || { tail -20 "$GOBLOCK_RUN_DIR/pipeline.log"; exit 1; }
  sleep 0.2
done
if grep -q "pipeline runs without it" "$GOBLOCK_RUN_DIR/pipeline.log"; then
  log "eBPF is unavailable here (see below): spans pass through unenriched"
  grep -m1 -A3 "required: false" "$GOBLOCK_RUN_DIR/pipeline.log" || true
fi

IFS=',' read -r -a paths <<< "$SCENARIOS"
for p in "${paths[@]}"; do
  log "scenario $p"
  build/demo-service load -url "http://127.0.0.1:$DEMO_PORT" -scenario "$p" \
    -concurrency 2 -duration 2s | .venv/bin/python -c 'import json, sys
r = json.load(sys.stdin)
print("  " + ", ".join(f"{k}={v}" for k, v in r.items() if not isinstance(v, dict | list)))' 
done

log "stopping the demo service (it flushes its spans) and the pipeline (it drains)"
bash scripts/services.sh stop demo
kill -TERM "$pipeline_pid"; wait "$pipeline_pid" || true
pipeline_pid=
log "report"
.venv/bin/otel-goblock report "$GOBLOCK_DEMO_OUT"
echo
echo "enriched traces: $GOBLOCK_DEMO_OUT (one OTLP/JSON request per line)"
if [ -n "$jaeger_url" ]; then
  slowest=$(.venv/bin/otel-goblock report "$GOBLOCK_DEMO_OUT" --format json --top 1 \
    | .venv/bin/python -c 'import json, sys; s = json.load(sys.stdin)["slowest"]; print(s[0]["trace_id"] if s else "")')
  [ -n "$slowest" ] && echo "slowest trace in Jaeger: $jaeger_url/trace/$slowest"
  echo "the same report from Jaeger: .venv/bin/otel-goblock report --jaeger $jaeger_url --service demo-service"
fi
