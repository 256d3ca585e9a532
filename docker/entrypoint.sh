#!/bin/bash
# Entrypoint of the Deja image (docker/Dockerfile). Runs under tini as PID 1.
#
#   scheduler [FLAG...]   deja-scheduler, flags from the environment, then FLAG... (last wins)
#   worker [FLAG...]      deja-worker, likewise
#   health                exit 0 when this container's daemon answers gRPC's health check
#                         (`deja health`: SERVING)
#   anything else         run as given (`deja ls`, `deja-worker --help`, `bash`)
#
# Environment (every one optional; a flag given as an argument overrides it):
#   scheduler: DEJA_LISTEN (0.0.0.0:7070), DEJA_DATA_DIR (/var/lib/deja),
#              DEJA_WORKER_TIMEOUT (10s), DEJA_MAX_ATTEMPTS (3), DEJA_HEARTBEAT_INTERVAL (1s),
#              DEJA_DISPATCH_AHEAD (0), DEJA_TLS_NAMES (names the scheduler is reached at),
#              DEJA_WORKER_CREDENTIALS_DIR (where it writes ca.crt and worker.token)
#   worker:    DEJA_SCHEDULER (scheduler:7070), DEJA_WORK_DIR (/var/lib/deja-worker),
#              DEJA_SLOTS (the CPUs), DEJA_WORKER_ID (stored in the work dir),
#              DEJA_ADVERTISE (<this container's IP>:DEJA_PEER_PORT), DEJA_PEER_PORT (7071),
#              DEJA_PEER_LISTEN, DEJA_CONTENT_STORE, DEJA_CACHE_BYTES, DEJA_SWEEP_INTERVAL,
#              DEJA_PLATFORM (K=V,K=V), DEJA_CREDENTIALS_DIR (holding ca.crt and worker.token:
#              --tls_ca and --token_file), or DEJA_TLS_CA and DEJA_TOKEN_FILE
#   both:      DEJA_INSECURE=1 (plaintext, no tokens: --insecure)
set -euo pipefail

# What `health` checks: the daemon's HOST:PORT on the first line, then the flags `deja
# health` needs to reach it (one per line).
health_file=/tmp/deja-health-target

# Whether --insecure is among the arguments or DEJA_INSECURE=1.
insecure() {
  [ "${DEJA_INSECURE:-0}" = 1 ] && return 0
  local arg
  for arg in "$@"; do [ "$arg" = --insecure ] && return 0; done
  return 1
}

# The value of --NAME=V or --NAME V in the arguments, else $2.
flag_value() {
  local name="$1" value="$2"; shift 2
  while [ $# -gt 0 ]; do
    case "$1" in
      --"$name"=*) value="${1#*=}" ;;
      --"$name") [ $# -gt 1 ] && value="$2" && shift ;;
    esac
    shift
  done
  printf '%s' "$value"
}

# The port of HOST:PORT (also [v6]:PORT).
port_of() { printf '%s' "${1##*:}"; }

# This container's address on its network: what other workers can dial.
own_address() {
  local ip
  ip="$(hostname -i 2>/dev/null | tr ' ' '\n' | grep -v '^127\.' | grep -v '^$' | head -n 1 || true)"
  printf '%s' "${ip:-$(hostname)}"
}

case "${1:-}" in
  scheduler)
    shift
    listen="${DEJA_LISTEN:-0.0.0.0:7070}"
    args=(--data_dir="${DEJA_DATA_DIR:-/var/lib/deja}" --listen="$listen")
    [ -n "${DEJA_WORKER_TIMEOUT:-}" ] && args+=(--worker_timeout="$DEJA_WORKER_TIMEOUT")
    [ -n "${DEJA_MAX_ATTEMPTS:-}" ] && args+=(--max_attempts="$DEJA_MAX_ATTEMPTS")
    [ -n "${DEJA_HEARTBEAT_INTERVAL:-}" ] && args+=(--heartbeat_interval="$DEJA_HEARTBEAT_INTERVAL")
    [ -n "${DEJA_DISPATCH_AHEAD:-}" ] && args+=(--dispatch_ahead="$DEJA_DISPATCH_AHEAD")
    [ -n "${DEJA_TLS_NAMES:-}" ] && args+=(--tls_names="$DEJA_TLS_NAMES")
    [ -n "${DEJA_WORKER_CREDENTIALS_DIR:-}" ] && args+=(--worker_credentials_dir="$DEJA_WORKER_CREDENTIALS_DIR")
    [ "${DEJA_INSECURE:-0}" = 1 ] && args+=(--insecure)
    data_dir="$(flag_value data_dir "${DEJA_DATA_DIR:-/var/lib/deja}" "$@")"
    if insecure "$@"; then health=(--insecure); else health=(--tls_ca="$data_dir/tls/ca.crt"); fi
    printf '%s\n' "127.0.0.1:$(port_of "$(flag_value listen "$listen" "$@")")" "${health[@]}" \
      >"$health_file"
    exec deja-scheduler "${args[@]}" "$@"
    ;;
  worker)
    shift
    peer_port="${DEJA_PEER_PORT:-7071}"
    advertise="${DEJA_ADVERTISE:-$(own_address):$peer_port}"
    args=(--scheduler="${DEJA_SCHEDULER:-scheduler:7070}" --work_dir="${DEJA_WORK_DIR:-/var/lib/deja-worker}"
          --slots="${DEJA_SLOTS:-$(nproc)}" --advertise="$advertise")
    [ -n "${DEJA_WORKER_ID:-}" ] && args+=(--id="$DEJA_WORKER_ID")
    [ -n "${DEJA_PEER_LISTEN:-}" ] && args+=(--peer_listen="$DEJA_PEER_LISTEN")
    [ -n "${DEJA_CONTENT_STORE:-}" ] && args+=(--content_store="$DEJA_CONTENT_STORE")
    [ -n "${DEJA_CACHE_BYTES:-}" ] && args+=(--cache_bytes="$DEJA_CACHE_BYTES")
    [ -n "${DEJA_SWEEP_INTERVAL:-}" ] && args+=(--sweep_interval="$DEJA_SWEEP_INTERVAL")
    [ -n "${DEJA_PLATFORM:-}" ] && args+=(--platform="$DEJA_PLATFORM")
    if [ "${DEJA_INSECURE:-0}" = 1 ]; then
      args+=(--insecure)
    else
      creds="${DEJA_CREDENTIALS_DIR:-}"
      args+=(--tls_ca="${DEJA_TLS_CA:-${creds:+$creds/}ca.crt}"
             --token_file="${DEJA_TOKEN_FILE:-${creds:+$creds/}worker.token}")
    fi
    # The peer service listens on --peer_listen, else on the --advertise address.
    advertise="$(flag_value advertise "$advertise" "$@")"
    peer_listen="$(flag_value peer_listen "${DEJA_PEER_LISTEN:-$advertise}" "$@")"
    peer_host="${peer_listen%:*}"
    case "$peer_host" in 0.0.0.0 | "" | "[::]") peer_host=127.0.0.1 ;; esac
    # The worker's own certificate (WORK_DIR/meta/tls/worker.pem, once enrolled): its peer
    # port takes only callers with a worker certificate.
    work_dir="$(flag_value work_dir "${DEJA_WORK_DIR:-/var/lib/deja-worker}" "$@")"
    if insecure "$@"; then
      health=(--insecure)
    else
      health=(--tls_ca="$(flag_value tls_ca "${DEJA_TLS_CA:-${creds:+$creds/}ca.crt}" "$@")"
              --identity="$work_dir/meta/tls/worker.pem")
    fi
    printf '%s\n' "$peer_host:$(port_of "$peer_listen")" "${health[@]}" >"$health_file"
    echo "deja-worker: advertising $advertise" >&2
    exec deja-worker "${args[@]}" "$@"
    ;;
  health)
    # gRPC's health service (grpc.health.v1.Health/Check: SERVING) through `deja health`.
    [ -r "$health_file" ] || { echo "no daemon started in this container" >&2; exit 1; }
    mapfile -t target <"$health_file"
    [ "$(port_of "${target[0]}")" != 0 ] || { echo "port 0: cannot check an ephemeral port" >&2; exit 0; }
    exec deja health --timeout 2 "${target[@]}"
    ;;
  "")
    exec deja --help
    ;;
  *)
    exec "$@"
    ;;
esac
