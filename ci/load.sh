#!/usr/bin/env bash
# CI step: sustained load on the running stack, short form (about 2 minutes here:
# build, ~20 s to start the eight layers and create fixtures, 75 s of load).
#
#   ci/load.sh [--duration S] [--users N] [--rate R] [--out FILE]   (flags of //tools/load)
#
# Locust's gRPC users (tools/load/users.py) send a read and a write RPC of every
# layer at a fixed rate to the stack on 127.0.0.1; the step fails on any UNKNOWN
# or INTERNAL status, an unsustained rate, a server whose fitted RSS slope after
# the warm-up exceeds the bound, a store failing its integrity check, an
# unreleased grant or a server left running (tools/load/load.py prints one
# line per check). The JSON result goes to --out (default
# $TMPDIR/chimera-load.json); flags given here override the defaults.
# Exit 0 when every check passed, 1 otherwise, 2 for bad flags.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BAZEL="${BAZEL:-bazel}"
args=(--duration 75 --users 6 --rate 12 --out "${TMPDIR:-/tmp}/chimera-load.json")
cd "$repo"
started=$SECONDS
status=0
"$BAZEL" run //tools/load -- "${args[@]}" "$@" || status=$?
echo "ci/load.sh: $((SECONDS - started)) s, exit $status"
exit "$status"
