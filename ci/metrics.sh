#!/usr/bin/env bash
# CI step: build and test //... with per-target metrics (tools/metrics/report.sh), then
# gate the report against the committed baseline (ci/metrics_baseline.json).
#
#   ci/metrics.sh [--out DIR] [extra bazel flags, e.g. --config=remote-cache]
#
# Gate limits come from $METRICS_GATE_FLAGS (e.g. "--max-size-growth-pct 5").
# Exit status: bazel's when the build or a test failed, else the gate's (1: regression).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BAZEL="${BAZEL:-bazel}"
read -r -a startup <<<"${BAZEL_STARTUP_FLAGS:-}"

out="build-metrics"
if [[ "${1:-}" == "--out" ]]; then out="$2"; shift 2; fi

build_status=0
tools/metrics/report.sh --out "$out" "$@" || build_status=$?
report="build_metrics.json"
((build_status == 0)) || report="build_metrics.failed.json"  # report.sh keeps a failed build apart

gate="$("$BAZEL" "${startup[@]}" info bazel-bin)/tools/metrics/gate/gate"
[[ -x "$gate" ]] || gate=""
read -r -a gate_flags <<<"${METRICS_GATE_FLAGS:-}"
gate_status=0
if [[ -n "$gate" ]]; then
  "$gate" --baseline ci/metrics_baseline.json --report "$out/$report" "${gate_flags[@]}" || gate_status=$?
else
  "$BAZEL" "${startup[@]}" run //tools/metrics:gate -- --baseline "$PWD/ci/metrics_baseline.json" \
    --report "$(cd "$out" && pwd)/$report" "${gate_flags[@]}" || gate_status=$?
fi
echo "metrics: build/test exit $build_status, gate exit $gate_status; dashboard: $out/dashboard/index.html"
((build_status == 0)) || exit "$build_status"
exit "$gate_status"
