#!/usr/bin/env bash
# A local remote cache for Bazel on loopback: gRPC 127.0.0.1:9092 (what
# `--config=remote-cache` in .bazelrc points at), HTTP 127.0.0.1:8082 for /status.
#
#   ci/remote_cache.sh install|start|stop|status
#
# Server: Buildbarn's bb_storage (ci/buildbarn.sh start cache; built from the Go
# module proxy by ci/buildbarn/build.sh), the same storage --config=remote uses.
# Where it cannot be built (no Go toolchain or module proxy), bazel-remote
# (`go install` at a pinned version; the proxy reachable from this project's
# machines answers 403 for every bazel-remote/v2 source zip), then BuildGrid, a
# REAPI server from PyPI (pinned, in its own venv), run cache-only. Force one with
# REMOTE_CACHE_BACKEND=buildbarn|bazel-remote|buildgrid (default: auto).
#
# Environment (defaults):
#   REMOTE_CACHE_HOME      ~/.cache/chimera-remote-cache   installed servers
#   REMOTE_CACHE_DIR       $REMOTE_CACHE_HOME/data         blobs, pid, log, config
#   REMOTE_CACHE_GRPC_PORT 9092
#   REMOTE_CACHE_HTTP_PORT 8082   (bazel-remote's /status; BuildGrid has none)
#   REMOTE_CACHE_MAX_SIZE_GB 5    (bazel-remote --max_size; BuildGrid: oldest blobs
#                                  are pruned at start to stay under it)
#   REMOTE_CACHE_START_TIMEOUT 60 seconds to wait until the server answers
#
# `status` prints one JSON object (backend, pid, addresses, blobs and bytes on disk,
# and bazel-remote's own /status) and exits 0 when the server runs, 3 when not.
set -euo pipefail

BAZEL_REMOTE_MODULE="github.com/buchgr/bazel-remote/v2"
BAZEL_REMOTE_VERSION="v2.5.1"
BUILDGRID_VERSION="0.4.4"

home="${REMOTE_CACHE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/chimera-remote-cache}"
dir="${REMOTE_CACHE_DIR:-$home/data}"
grpc_port="${REMOTE_CACHE_GRPC_PORT:-9092}"
http_port="${REMOTE_CACHE_HTTP_PORT:-8082}"
max_size_gb="${REMOTE_CACHE_MAX_SIZE_GB:-5}"
backend_choice="${REMOTE_CACHE_BACKEND:-auto}"
start_timeout="${REMOTE_CACHE_START_TIMEOUT:-60}"

bazel_remote_bin="$home/bin/bazel-remote-$BAZEL_REMOTE_VERSION"
buildgrid_venv="$home/buildgrid-$BUILDGRID_VERSION"
pid_file="$dir/server.pid"
backend_file="$dir/server.backend"
log_file="$dir/server.log"

log() { echo "remote_cache: $*" >&2; }
ci_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Buildbarn keeps its blobs, logs and pids under the cache directory.
buildbarn() { BUILDBARN_DATA="$dir/buildbarn" BUILDBARN_PORT="$grpc_port" "$ci_dir/buildbarn.sh" "$@"; }

install_bazel_remote() {
  [[ -x "$bazel_remote_bin" ]] && return 0
  command -v go >/dev/null || { log "no go toolchain"; return 1; }
  local gobin
  gobin="$(mktemp -d)"
  log "go install $BAZEL_REMOTE_MODULE@$BAZEL_REMOTE_VERSION"
  if GOBIN="$gobin" go install "$BAZEL_REMOTE_MODULE@$BAZEL_REMOTE_VERSION" >"$gobin.log" 2>&1; then
    mkdir -p "$home/bin"
    mv "$gobin/bazel-remote" "$bazel_remote_bin"
    rm -rf "$gobin" "$gobin.log"
    return 0
  fi
  log "bazel-remote could not be installed: $(tail -2 "$gobin.log" | tr '\n' ' ')"
  rm -rf "$gobin" "$gobin.log"
  return 1
}

install_buildgrid() {
  local lock
  lock="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/buildgrid/requirements_lock.txt"
  [[ -f "$buildgrid_venv/.installed" ]] && cmp -s "$lock" "$buildgrid_venv/.installed" && return 0
  log "pip install buildgrid (hash-locked: ci/buildgrid/requirements_lock.txt) into $buildgrid_venv"
  rm -rf "$buildgrid_venv"
  python3 -m venv "$buildgrid_venv"
  "$buildgrid_venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r "$lock"
  cp "$lock" "$buildgrid_venv/.installed"
}

# Prints the backend to use, installing it if needed.
install() {
  case "$backend_choice" in
    bazel-remote) install_bazel_remote && echo bazel-remote ;;
    buildgrid) install_buildgrid && echo buildgrid ;;
    buildbarn) "$ci_dir/buildbarn/build.sh" >/dev/null && echo buildbarn ;;
    auto)
      if "$ci_dir/buildbarn/build.sh" >/dev/null; then
        echo buildbarn
      elif install_bazel_remote; then
        echo bazel-remote
      else
        log "falling back to BuildGrid $BUILDGRID_VERSION (PyPI)"
        install_buildgrid && echo buildgrid
      fi
      ;;
    *) log "REMOTE_CACHE_BACKEND must be auto, buildbarn, bazel-remote or buildgrid"; return 2 ;;
  esac
}

running_pid() {
  [[ -f "$pid_file" ]] || return 1
  local pid
  pid="$(cat "$pid_file")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_buildgrid_config() {
  cat >"$dir/buildgrid.yml" <<YAML
description: Chimera remote cache (cache only, no remote execution).
server:
  - !channel
    address: "127.0.0.1:$grpc_port"
    insecure-mode: true
authorization:
  method: none
storages:
  - !disk-storage &cas
    path: $dir/cas
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 1000000
    allow-updates: true
    cache-failed-actions: false
instances:
  - name: ""
    services:
      - !action-cache
        cache: *ac
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
thread-pool-size: 20
YAML
}

# BuildGrid's disk storage never evicts: drop the oldest blobs until under 80% of the limit.
prune_cas() {
  local limit=$((max_size_gb * 1024 * 1024 * 1024)) used
  [[ -d "$dir/cas" ]] || return 0
  used="$(du -sb "$dir/cas" | cut -f1)"
  ((used > limit)) || return 0
  log "pruning $dir/cas: $used bytes > $limit"
  find "$dir/cas" -type f -printf '%T@ %s %p\n' | sort -n |
    awk -v excess=$((used - limit * 8 / 10)) '{ if (freed < excess) { print $3; freed += $2 } }' |
    xargs -r rm -f
}

start() {
  local pid backend
  if pid="$(running_pid)"; then
    log "already running (pid $pid, $(cat "$backend_file"))"
    return 0
  fi
  if port_open "$grpc_port"; then
    log "127.0.0.1:$grpc_port is taken by another process"
    return 1
  fi
  backend="$(install)"
  mkdir -p "$dir/cas"
  case "$backend" in
    buildbarn)
      buildbarn start cache || return 1
      echo buildbarn >"$backend_file"
      cp "$dir/buildbarn/run/storage.pid" "$pid_file"
      date +%s >"$dir/server.started"
      return 0
      ;;
    bazel-remote)
      setsid "$bazel_remote_bin" --dir "$dir/cas" --max_size "$max_size_gb" --host 127.0.0.1 \
        --port "$http_port" --grpc_port "$grpc_port" >"$log_file" 2>&1 </dev/null &
      ;;
    buildgrid)
      write_buildgrid_config
      prune_cas
      setsid "$buildgrid_venv/bin/bgd" server start "$dir/buildgrid.yml" >"$log_file" 2>&1 </dev/null &
      ;;
  esac
  pid=$!
  echo "$pid" >"$pid_file"
  echo "$backend" >"$backend_file"
  date +%s >"$dir/server.started"
  local waited=0
  until port_open "$grpc_port" && { [[ "$backend" != bazel-remote ]] || curl -fsS "http://127.0.0.1:$http_port/status" >/dev/null 2>&1; }; do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "server exited; last lines of $log_file:"
      tail -20 "$log_file" >&2
      rm -f "$pid_file"
      return 1
    fi
    if ((waited >= start_timeout * 2)); then
      log "not ready after ${start_timeout}s"
      stop
      return 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  log "$backend ready on grpc://127.0.0.1:$grpc_port (pid $pid, dir $dir)"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then
    log "not running"
    rm -f "$pid_file"
    return 0
  fi
  if [[ "$(cat "$backend_file" 2>/dev/null)" == buildbarn ]]; then
    buildbarn stop
    rm -f "$pid_file"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$pid_file"
  log "stopped (pid $pid)"
}

status() {
  local pid="" running=false backend="" files=0 bytes=0 server_status=null started=0
  if pid="$(running_pid)"; then running=true; else pid=null; fi
  [[ -f "$backend_file" ]] && backend="$(cat "$backend_file")"
  [[ -f "$dir/server.started" ]] && started="$(cat "$dir/server.started")"
  if [[ -d "$dir/cas" ]]; then
    files="$(find "$dir/cas" -type f | wc -l)"
    bytes="$(du -sb "$dir/cas" | cut -f1)"
  fi
  if [[ "$backend" == buildbarn ]]; then
    server_status="$(buildbarn status || true)"
  elif [[ "$running" == true && "$backend" == bazel-remote ]]; then
    server_status="$(curl -fsS "http://127.0.0.1:$http_port/status" 2>/dev/null || echo null)"
  fi
  cat <<JSON
{"backend": "$backend", "running": $running, "pid": $pid, "grpc": "grpc://127.0.0.1:$grpc_port", "http_status": "http://127.0.0.1:$http_port/status", "dir": "$dir", "max_size_bytes": $((max_size_gb * 1024 * 1024 * 1024)), "disk_files": $files, "disk_bytes": $bytes, "started_at_epoch": $started, "uptime_seconds": $([[ "$started" != 0 && "$running" == true ]] && echo $(($(date +%s) - started)) || echo 0), "server_status": $server_status}
JSON
  [[ "$running" == true ]] || return 3
}

case "${1:-}" in
  install) install >/dev/null ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
