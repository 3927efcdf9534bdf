#!/usr/bin/env bash
# Start, stop and inspect the test services: Jaeger (the OTLP backend) and the demo service.
#
#   scripts/services.sh start|stop|restart|status jaeger|demo|all
#
# Idempotent: start on a running service and stop on a stopped one succeed and do nothing.
# start waits until the service answers (HTTP readiness checks) and fails with the log's
# tail when it does not. State lives in $GOBLOCK_RUN_DIR (default .cache/run/):
# <name>.pid, <name>.log, <name>.env (the addresses it was started with).
#
# Environment (defaults in brackets):
#   GOBLOCK_RUN_DIR         [.cache/run]  one directory per set of services; tests use their own
#   JAEGER_BIN              [build/bin/jaeger]
#   JAEGER_CONFIG           [scripts/jaeger-config.yaml]
#   JAEGER_OTLP_GRPC_PORT   [14317]   JAEGER_OTLP_HTTP_PORT [14318]
#   JAEGER_QUERY_PORT       [16686]   JAEGER_QUERY_GRPC_PORT [16685]
#   JAEGER_HEALTH_PORT      [13134]   JAEGER_METRICS_PORT   [18888]
#   DEMO_VARIANT            [dwarf]  or "stripped" (build/demo-service-stripped)
#   DEMO_BIN                [build/demo-service or build/demo-service-stripped]
#   DEMO_PORT               [8080]    HTTP port on 127.0.0.1 (scenarios, /healthz, pprof)
#   DEMO_DATA_DIR           [.cache/demo-data]  /fsync files (a real disk, not tmpfs)
#   OTEL_EXPORTER_OTLP_ENDPOINT [http://127.0.0.1:$JAEGER_OTLP_GRPC_PORT]  where the demo exports
#   OTEL_METRICS_EXPORTER   [none]    Jaeger takes no metrics; set "otlp" for a pipeline
#   OTEL_SERVICE_NAME       [demo-service]
#   START_TIMEOUT           [60]      seconds to wait for readiness
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN_DIR=${GOBLOCK_RUN_DIR:-$ROOT/.cache/run}
START_TIMEOUT=${START_TIMEOUT:-60}
: "${JAEGER_OTLP_GRPC_PORT:=14317}" "${JAEGER_OTLP_HTTP_PORT:=14318}"
: "${JAEGER_QUERY_PORT:=16686}" "${JAEGER_QUERY_GRPC_PORT:=16685}"
: "${JAEGER_HEALTH_PORT:=13134}" "${JAEGER_METRICS_PORT:=18888}"
export JAEGER_OTLP_GRPC_PORT JAEGER_OTLP_HTTP_PORT JAEGER_QUERY_PORT JAEGER_QUERY_GRPC_PORT \
       JAEGER_HEALTH_PORT JAEGER_METRICS_PORT
DEMO_PORT=${DEMO_PORT:-8080}
log() { printf '[services] %s\n' "$*" >&2; }

# http_ok PORT PATH: true when GET http://127.0.0.1:PORT/PATH answers 200. Plain bash
# (/dev/tcp), so a fresh machine needs no curl. A subshell, because a failed `exec`
# redirection ends a non-interactive shell.
http_ok() (
  exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
  IFS= read -r -t 5 line <&3 || exit 1
  [[ $line == HTTP/1.?" 200"* ]]
)

# tcp_ok PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
tcp_ok() ( exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1" )

# pid_of NAME: the recorded pid when that process is alive and is what we started.
pid_of() {
  local f=$RUN_DIR/$1.pid pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$(cat "$RUN_DIR/$1.match" 2>/dev/null || echo "$1")"
  echo "$pid"
}

# alive PID: the process exists and is not a zombie waiting for a parent to reap it (the
# services are orphans, reaped by whatever init the machine or container runs).
alive() {
  local st
  st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

ready() {
  case $1 in
    jaeger) http_ok "$JAEGER_HEALTH_PORT" /status && http_ok "$JAEGER_QUERY_PORT" /api/services \
              && tcp_ok "$JAEGER_OTLP_GRPC_PORT" ;;
    demo) http_ok "$DEMO_PORT" /healthz ;;
  esac
}

launch() {
  local name=$1
  shift
  mkdir -p "$RUN_DIR"
  echo "$1" > "$RUN_DIR/$name.match"
  # setsid: the service gets its own session, so a terminal's or a test runner's signals do
  # not reach it; stop sends it SIGTERM by pid.
  setsid "$@" > "$RUN_DIR/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN_DIR/$name.pid"
}

start_one() {
  local name=$1 pid
  if pid=$(pid_of "$name"); then
    log "$name already running (pid $pid)"
    return 0
  fi
  case $name in
    jaeger)
      local bin=${JAEGER_BIN:-$ROOT/build/bin/jaeger}
      [ -x "$bin" ] || { log "$bin missing: run scripts/build_jaeger.sh"; return 1; }
      launch jaeger "$bin" --config "${JAEGER_CONFIG:-$ROOT/scripts/jaeger-config.yaml}"
      {
        echo "JAEGER_OTLP_GRPC_ENDPOINT=127.0.0.1:$JAEGER_OTLP_GRPC_PORT"
        echo "JAEGER_OTLP_HTTP_ENDPOINT=127.0.0.1:$JAEGER_OTLP_HTTP_PORT"
        echo "JAEGER_QUERY_URL=http://127.0.0.1:$JAEGER_QUERY_PORT"
        echo "JAEGER_HEALTH_URL=http://127.0.0.1:$JAEGER_HEALTH_PORT/status"
      } > "$RUN_DIR/jaeger.env"
      ;;
    demo)
      local bin
      if [ "${DEMO_VARIANT:-dwarf}" = stripped ]; then
        bin=${DEMO_BIN:-$ROOT/build/demo-service-stripped}
      else
        bin=${DEMO_BIN:-$ROOT/build/demo-service}
      fi
      [ -x "$bin" ] || { log "$bin missing: run scripts/build_demo.sh"; return 1; }
      # on the repository's disk, not under a run dir that may be on tmpfs (/tmp), where
      # fsync costs nothing and /fsync would not wait on a disk
      local data=${DEMO_DATA_DIR:-$ROOT/.cache/demo-data}
      mkdir -p "$data"
      export OTEL_EXPORTER_OTLP_ENDPOINT=${OTEL_EXPORTER_OTLP_ENDPOINT:-http://127.0.0.1:$JAEGER_OTLP_GRPC_PORT}
      export OTEL_METRICS_EXPORTER=${OTEL_METRICS_EXPORTER:-none}
      launch demo "$bin" -listen "127.0.0.1:$DEMO_PORT" -data-dir "$data"
      {
        echo "DEMO_URL=http://127.0.0.1:$DEMO_PORT"
        echo "DEMO_BIN=$bin"
        echo "OTEL_EXPORTER_OTLP_ENDPOINT=$OTEL_EXPORTER_OTLP_ENDPOINT"
      } > "$RUN_DIR/demo.env"
      ;;
    *) log "unknown service: $name"; return 2 ;;
  esac
  pid=$(cat "$RUN_DIR/$name.pid")
  local deadline=$((SECONDS + START_TIMEOUT))
  until ready "$name"; do
    if ! alive "$pid"; then
      log "$name exited during start-up; last lines of $RUN_DIR/$name.log:"
      tail -n 20 "$RUN_DIR/$name.log" >&2
      rm -f "$RUN_DIR/$name.pid"
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "$name not ready after ${START_TIMEOUT}s; last lines of $RUN_DIR/$name.log:"
      tail -n 20 "$RUN_DIR/$name.log" >&2
      stop_one "$name"
      return 1
    fi
    sleep 0.1
  done
  log "$name ready (pid $pid, log $RUN_DIR/$name.log)"
}

stop_one() {
  local name=$1 pid
  if ! pid=$(pid_of "$name"); then
    rm -f "$RUN_DIR/$name.pid"
    log "$name not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  # SIGTERM lets the demo flush its spans and Jaeger stop cleanly; SIGKILL after 15 s.
  for _ in $(seq 150); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "$name (pid $pid) ignored SIGTERM; killing"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/$name.pid"
  log "$name stopped"
}

status_one() {
  local name=$1 pid
  if pid=$(pid_of "$name"); then
    if ready "$name"; then echo "$name running (pid $pid), ready"; else echo "$name running (pid $pid), not ready"; fi
    [ -f "$RUN_DIR/$name.env" ] && sed 's/^/  /' "$RUN_DIR/$name.env"
    return 0
  fi
  echo "$name stopped"
  return 3
}

[ $# -eq 2 ] || { sed -n '2,8p' "$0" >&2; exit 2; }
action=$1
case $2 in
  all) names="jaeger demo" ;;
  jaeger|demo) names=$2 ;;
  *) log "unknown service: $2 (jaeger, demo or all)"; exit 2 ;;
esac
rc=0
case $action in
  start) for n in $names; do start_one "$n" || rc=$?; done ;;
  stop) for n in $(echo "$names" | tr ' ' '\n' | tac); do stop_one "$n" || rc=$?; done ;;
  restart) for n in $names; do stop_one "$n"; start_one "$n" || rc=$?; done ;;
  status) for n in $names; do status_one "$n" || rc=$?; done ;;
  *) log "unknown action: $action (start, stop, restart, status)"; exit 2 ;;
esac
exit $rc
