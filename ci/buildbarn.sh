#!/usr/bin/env bash
# A loopback Buildbarn for Bazel's --config=remote-cache and --config=remote.
#
#   ci/buildbarn.sh start [execution|cache]   (default: execution)
#   ci/buildbarn.sh stop
#   ci/buildbarn.sh status                    (one JSON object; exit 3 when stopped)
#
#   cache      bb_storage alone: CAS + action cache on grpc://127.0.0.1:9092.
#   execution  bb_storage (the same CAS + AC, and the Execute frontend on the same
#              port) + bb_scheduler + bb_worker + bb_runner.
#
# The binaries come from ci/buildbarn/build.sh (built once into ~/.cache). Configs
# are the Jsonnet files in ci/buildbarn/config/. bb_runner runs every action as an
# unprivileged user (nobody) inside a network namespace of its own (`unshare
# --net`: only its own loopback interface), like Bazel's local linux-sandbox with
# the network off; the worker hands it build directories over a UNIX socket.
#
# Environment (defaults):
#   BUILDBARN_DATA           /var/tmp/chimera-buildbarn  blobs, worker directories,
#                            logs (logs/<program>.log), pids. Outside $HOME: the
#                            unprivileged runner must be able to reach it.
#   BUILDBARN_PORT           9092   bb_storage gRPC (what both configs point at)
#   BUILDBARN_CAS_SIZE_GB    8      sparse CAS file; a blob must fit in one of its
#                                   14 blocks (8 GiB: blobs up to ~585 MiB)
#   BUILDBARN_CONCURRENCY    $(nproc)  actions run at once
#   BUILDBARN_RUNNER_UID     65534  user (and group) the actions run as
#   BUILDBARN_START_TIMEOUT  120    seconds to wait (includes a cold build)
# Further loopback ports (BUILDBARN_<NAME>_PORT, e.g. for a second instance):
# SCHEDULER_CLIENT 8982, SCHEDULER_WORKER 8983, SCHEDULER_ADMIN (HTTP) 7982;
# Prometheus metrics STORAGE_METRICS 9981, SCHEDULER_METRICS 9982, WORKER_METRICS 9986.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
data="${BUILDBARN_DATA:-/var/tmp/chimera-buildbarn}"
runner_uid="${BUILDBARN_RUNNER_UID:-65534}"
start_timeout="${BUILDBARN_START_TIMEOUT:-120}"

export BB_DATA="$data"
export BB_STORAGE_PORT="${BUILDBARN_PORT:-9092}"
export BB_STORAGE_METRICS_PORT="${BUILDBARN_STORAGE_METRICS_PORT:-9981}"
export BB_SCHEDULER_CLIENT_PORT="${BUILDBARN_SCHEDULER_CLIENT_PORT:-8982}"
export BB_SCHEDULER_WORKER_PORT="${BUILDBARN_SCHEDULER_WORKER_PORT:-8983}"
export BB_SCHEDULER_ADMIN_PORT="${BUILDBARN_SCHEDULER_ADMIN_PORT:-7982}"
export BB_SCHEDULER_METRICS_PORT="${BUILDBARN_SCHEDULER_METRICS_PORT:-9982}"
export BB_WORKER_METRICS_PORT="${BUILDBARN_WORKER_METRICS_PORT:-9986}"
export BB_CAS_SIZE_BYTES=$((${BUILDBARN_CAS_SIZE_GB:-8} * 1024 * 1024 * 1024))
export BB_CONCURRENCY="${BUILDBARN_CONCURRENCY:-$(nproc)}"

programs=(storage scheduler worker runner)

log() { echo "buildbarn: $*" >&2; }

pid_of() {
  local file="$data/run/$1.pid" pid
  [[ -f "$file" ]] || return 1
  pid="$(cat "$file")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Launches one program in its own session, logging to logs/<name>.log.
launch() {
  local name="$1"
  shift
  setsid "$@" >"$data/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$data/run/$name.pid"
}

# Waits until a program's port (or socket) answers; on failure names the program
# and the last line of its log.
await() {
  local name="$1" ready="$2" waited=0
  until eval "$ready"; do
    if ! pid_of "$name" >/dev/null; then
      log "$name exited: $(tail -1 "$data/logs/$name.log") (log: $data/logs/$name.log)"
      return 1
    fi
    if ((waited >= start_timeout * 4)); then
      log "$name not ready after ${start_timeout}s (log: $data/logs/$name.log)"
      return 1
    fi
    sleep 0.25
    waited=$((waited + 1))
  done
}

start() {
  local mode="${1:-execution}" bin name
  [[ "$mode" == execution || "$mode" == cache ]] || { log "start takes 'execution' or 'cache', not '$mode'"; return 2; }
  for name in "${programs[@]}"; do
    if pid_of "$name" >/dev/null; then
      log "already running ($(cat "$data/run/mode")); 'ci/buildbarn.sh stop' first"
      return 1
    fi
  done
  if port_open "$BB_STORAGE_PORT"; then
    log "127.0.0.1:$BB_STORAGE_PORT is taken by another process"
    return 1
  fi
  if [[ "$mode" == execution ]]; then
    command -v unshare >/dev/null && command -v setpriv >/dev/null && command -v ip >/dev/null ||
      { log "remote execution needs unshare and setpriv (util-linux) and ip (iproute2)"; return 1; }
    unshare --net true 2>/dev/null ||
      { log "cannot create a network namespace (unshare --net needs root or CAP_SYS_ADMIN)"; return 1; }
  fi
  bin="$("$repo/ci/buildbarn/build.sh")"

  mkdir -p "$data"/{run,logs,config,bin} "$data"/storage-{cas,ac}/persistent_state
  rm -f "$data"/run/*.pid
  # The runner (an unprivileged user) reads its config and binary from here.
  cp "$repo"/ci/buildbarn/config/*sonnet "$data/config/"
  chmod 0755 "$data" "$data/config" "$data/bin"
  chmod 0644 "$data"/config/*
  echo "$mode" >"$data/run/mode"
  date +%s >"$data/run/started"

  BB_EXECUTION="$([[ "$mode" == execution ]] && echo true || echo false)" \
    launch storage "$bin/bb_storage" "$data/config/storage.jsonnet"
  await storage "port_open $BB_STORAGE_PORT" || { stop; return 1; }
  if [[ "$mode" == execution ]]; then
    # Fresh build directory each start; as upstream's deployment: the build
    # directory open to the runner, the worker's file cache private to it.
    rm -rf "$data/worker"
    mkdir -p "$data/worker/build" "$data/worker/cache" "$data/worker/runner"
    chmod 0755 "$data/worker"
    chown "$runner_uid:$runner_uid" "$data/worker/runner"  # the runner's socket
    chmod 0777 "$data/worker/build"
    chmod 0700 "$data/worker/cache"
    install -m 0755 "$bin/bb_runner" "$data/bin/bb_runner"
    setpriv --reuid="$runner_uid" --regid="$runner_uid" --clear-groups -- test -r "$data/config/runner.jsonnet" ||
      { log "user $runner_uid cannot reach $data (a parent directory is private); set BUILDBARN_DATA"; stop; return 1; }

    launch scheduler "$bin/bb_scheduler" "$data/config/scheduler.jsonnet"
    await scheduler "port_open $BB_SCHEDULER_WORKER_PORT && port_open $BB_SCHEDULER_CLIENT_PORT" || { stop; return 1; }
    # A new network namespace with only its loopback interface, brought up (tests
    # talk to servers they start on 127.0.0.1), as Bazel's linux-sandbox does;
    # privileges are dropped after that.
    launch runner unshare --net -- /bin/sh -c 'ip link set lo up && exec "$@"' runner \
      setpriv --reuid="$runner_uid" --regid="$runner_uid" --clear-groups --no-new-privs -- \
      "$data/bin/bb_runner" "$data/config/runner.jsonnet"
    await runner "[[ -S '$data/worker/runner/socket' ]]" || { stop; return 1; }
    launch worker "$bin/bb_worker" "$data/config/worker.jsonnet"
    await worker "port_open $BB_WORKER_METRICS_PORT" || { stop; return 1; }
  fi
  log "$mode ready on grpc://127.0.0.1:$BB_STORAGE_PORT (data $data, logs $data/logs)"
}

stop() {
  local name pid stopped=()
  # Reverse order: clients before the servers they talk to.
  for name in runner worker scheduler storage; do
    pid="$(pid_of "$name")" || continue
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    stopped+=("$name:$pid")
  done
  rm -f "$data"/run/*.pid
  log "stopped ${stopped[*]:-nothing (not running)}"
}

# Sum of a Prometheus series over the label sets containing a label; 0 if absent.
metric_sum() {
  curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk -v name="$2" -v label="$3" 'index($1, name "{") == 1 && index($1, label) { sum += $NF } END { printf "%d", sum }'
}

status() {
  local mode="" started=0 running=false name pid pids=() cas_disk=0 executed=0 queued=0
  [[ -f "$data/run/mode" ]] && mode="$(cat "$data/run/mode")"
  [[ -f "$data/run/started" ]] && started="$(cat "$data/run/started")"
  for name in "${programs[@]}"; do
    if pid="$(pid_of "$name")"; then running=true; else pid=null; fi
    pids+=("\"$name\": $pid")
  done
  [[ -f "$data/storage-cas/blocks" ]] && cas_disk="$(du -B1 "$data/storage-cas/blocks" | cut -f1)"
  if [[ "$running" == true && "$mode" == execution ]]; then
    # Commands the worker ran (any result), and the distinct actions queued.
    executed="$(metric_sum "$BB_WORKER_METRICS_PORT" buildbarn_builder_build_executor_duration_seconds_count 'stage="Running"')"
    queued="$(metric_sum "$BB_SCHEDULER_METRICS_PORT" buildbarn_builder_in_memory_build_queue_in_flight_deduplications_total 'outcome="New"')"
  fi
  local IFS=,
  cat <<JSON
{"running": $running, "mode": "$mode", "pids": {${pids[*]}}, "grpc": "grpc://127.0.0.1:$BB_STORAGE_PORT", "ports": {"storage": $BB_STORAGE_PORT, "scheduler_clients": $BB_SCHEDULER_CLIENT_PORT, "scheduler_workers": $BB_SCHEDULER_WORKER_PORT, "scheduler_admin_http": $BB_SCHEDULER_ADMIN_PORT, "metrics": {"storage": $BB_STORAGE_METRICS_PORT, "scheduler": $BB_SCHEDULER_METRICS_PORT, "worker": $BB_WORKER_METRICS_PORT}}, "data": "$data", "logs": "$data/logs", "cas_size_bytes": $BB_CAS_SIZE_BYTES, "cas_disk_bytes": $cas_disk, "runner_uid": $runner_uid, "concurrency": $BB_CONCURRENCY, "actions_executed": $executed, "actions_queued": $queued, "started_at_epoch": $started}
JSON
  [[ "$running" == true ]] || return 3
}

case "${1:-}" in
  start) start "${2:-execution}" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start [execution|cache] | stop | status" >&2; exit 2 ;;
esac
