#!/usr/bin/env bash
# The 10-minute sustained-load run of //tools/load (the issue's target: 0
# UNKNOWN/INTERNAL, bounded memory), result in bench/results/load_10min.json.
#
#   bench/load/run.sh [extra //tools/load flags]
#
# Refuses to start when the machine's 1-minute load average is 1.5 or more
# (other work would be measured, not the stack); CHIMERA_LOAD_FORCE=1 runs it
# anyway and the JSON keeps the load averages at start and end.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BAZEL="${BAZEL:-bazel}"
load1="$(cut -d' ' -f1 /proc/loadavg)"
if [[ "${CHIMERA_LOAD_FORCE:-0}" != 1 ]] && awk -v l="$load1" 'BEGIN { exit !(l >= 1.5) }'; then
  echo "bench/load/run.sh: load average $load1 >= 1.5: not a quiet machine (CHIMERA_LOAD_FORCE=1 to run anyway)" >&2
  exit 2
fi
cd "$repo"
"$BAZEL" run //tools/load -- --duration 600 --users 8 --rate 16 --rss-interval 5 \
  --out "$repo/bench/results/load_10min.json" "$@"
