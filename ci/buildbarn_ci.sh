#!/usr/bin/env bash
# CI step: the whole test suite through remote execution on a freshly started
# Buildbarn (empty CAS and action cache), from a fresh copy of the tree
# (tools/export_tree.sh) in a new output base.
#
#   ci/buildbarn_ci.sh [OUT]     (default OUT: build-metrics/remote-execution)
#
# Writes OUT/bazel.log, OUT/buildbarn_status.json and OUT/summary.json (processes
# run remotely / in the local sandbox / internally, tests, wall time), prints one
# line, and fails when the tests fail or when fewer than
# REMOTE_EXECUTION_MIN_SHARE (0.9) of the executed (non-internal) processes ran
# remotely. Buildbarn and the Bazel server are stopped at the end.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BAZEL="${BAZEL:-bazel}"
out="${1:-$repo/build-metrics/remote-execution}"
min_share="${REMOTE_EXECUTION_MIN_SHARE:-0.9}"
targets="${REMOTE_EXECUTION_TARGETS:-//...}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d /tmp/chimera-remote.XXXXXX)"
chmod 0755 "$work"  # Buildbarn's unprivileged runner works below it
export BUILDBARN_DATA="$work/buildbarn"
cleanup() {
  "$repo/ci/buildbarn.sh" stop >/dev/null 2>&1 || true
  [[ -d "$work/ob" ]] && (cd "$work/chimera" && "$BAZEL" --output_base="$work/ob" shutdown >/dev/null 2>&1) || true
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM  # so that cleanup runs when CI cancels the step

"$repo/tools/export_tree.sh" "$work/chimera"
started=$SECONDS
"$repo/ci/buildbarn.sh" start execution
startup_s=$((SECONDS - started))

started=$SECONDS
status=0
# shellcheck disable=SC2086  # targets is a list of patterns
(cd "$work/chimera" && "$BAZEL" --output_base="$work/ob" test --config=remote $targets) >"$out/bazel.log" 2>&1 || status=$?
wall_s=$((SECONDS - started))
"$repo/ci/buildbarn.sh" status >"$out/buildbarn_status.json" || true

# "INFO: 1234 processes: 400 internal, 800 remote, 34 linux-sandbox."
processes="$(grep -E '^INFO: [0-9]+ process' "$out/bazel.log" | tail -1 || true)"
count() { grep -oE "[0-9]+ $1([,.]|$)" <<<"$processes" | grep -oE '^[0-9]+' || echo 0; }
remote="$(count remote)"
internal="$(count internal)"
total="$(grep -oE '^INFO: [0-9]+' <<<"$processes" | grep -oE '[0-9]+' || echo 0)"
local_run=$((total - remote - internal))
tests="$(grep -E '^Executed [0-9]+ out of [0-9]+ tests?' "$out/bazel.log" | tail -1 || true)"
share="$(python3 -c "import sys; r, l = int(sys.argv[1]), int(sys.argv[2]); print(round(r / (r + l), 4) if r + l else 0)" "$remote" "$local_run")"
cat >"$out/summary.json" <<JSON
{"targets": "$targets", "bazel_exit": $status, "wall_s": $wall_s, "buildbarn_startup_s": $startup_s, "processes": {"total": $total, "internal": $internal, "remote": $remote, "local": $local_run}, "remote_share_of_executed": $share, "required_share": $min_share, "tests": "$tests", "buildbarn": $(cat "$out/buildbarn_status.json")}
JSON
echo "remote execution: $remote remote, $local_run local, $internal internal processes (remote share $share); $tests; ${wall_s} s (+${startup_s} s Buildbarn start)"
if [[ "$status" != 0 ]]; then
  tail -30 "$out/bazel.log" >&2
  echo "remote execution: bazel test --config=remote failed (exit $status; log $out/bazel.log)" >&2
  exit 1
fi
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)" "$share" "$min_share" || {
  echo "remote execution: only $share of executed processes ran remotely (required $min_share)" >&2
  exit 1
}
