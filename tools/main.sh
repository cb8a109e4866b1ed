#!/usr/bin/env bash
# The main job: set-up, build and test everything with per-target metrics, run
# the end-to-end loop on layers 1-4, and say where the results are.
#
#   tools/main.sh [bazel flags...]     e.g. tools/main.sh --config=remote-cache
#
# 1. tools/bootstrap.sh               pinned Debian packages, versions checked
# 2. tools/metrics/report.sh          bazel test //... with the metrics aspect ->
#                                     build-metrics/build_metrics.json, dashboard/index.html
# 3. bazel run //tools/main:main_job  layers 1-4 as subprocesses, the plan over gRPC ->
#                                     build-metrics/main_job_summary.json (logs: main_job_run/)
# 4. bazel run //tools/loop:closed_loop  layers 3-8 as subprocesses, the closed loop:
#                                     baseline KPIs -> refinement's trigger -> resources'
#                                     grant -> evolution's choice -> genetics' GA with
#                                     fitness from layer-4 batches -> canary -> A/B test on
#                                     held-out instances -> promote or roll back ->
#                                     build-metrics/closed_loop_summary.json (logs: closed_loop_run/)
# 5. bazel run //tools/metrics/report:loop_page  that summary -> dashboard/loop.html + PNGs,
#                                     linked from dashboard/index.html
#
# Stops at the first step that fails, with that step's exit status. Bazel comes
# from $BAZEL (default `bazel`), startup flags from $BAZEL_STARTUP_FLAGS (e.g.
# --output_base=/tmp/ob), as for tools/metrics/report.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
out="$root/build-metrics"
summary="$out/main_job_summary.json"
run_dir="$out/main_job_run"
loop_summary="$out/closed_loop_summary.json"
loop_run_dir="$out/closed_loop_run"

BAZEL="${BAZEL:-bazel}"
read -r -a startup <<<"${BAZEL_STARTUP_FLAGS:-}"

step() {
  local name="$1"
  shift
  echo
  echo "=== main.sh: $name"
  local status=0
  "$@" || status=$?
  if ((status != 0)); then
    echo "main.sh: FAILED at '$name' (exit status $status)" >&2
    exit "$status"
  fi
}

step "set-up (tools/bootstrap.sh)" tools/bootstrap.sh
# A stale summary must not pass for this run's.
rm -f "$summary" "$loop_summary" "$out/dashboard/loop.html"
rm -rf "$loop_run_dir"  # the loop resumes from a run dir's genome store: start it fresh
step "build and test //... with metrics (tools/metrics/report.sh)" \
  tools/metrics/report.sh --out "$out" -- "$@"
step "end-to-end loop (//tools/main:main_job)" \
  "$BAZEL" "${startup[@]}" run "$@" //tools/main:main_job -- \
  --summary-out "$summary" --run-dir "$run_dir"
step "closed loop (//tools/loop:closed_loop)" \
  "$BAZEL" "${startup[@]}" run "$@" //tools/loop:closed_loop -- \
  --summary-out "$loop_summary" --run-dir "$loop_run_dir"
step "closed loop page (//tools/metrics/report:loop_page)" \
  "$BAZEL" "${startup[@]}" run "$@" //tools/metrics/report:loop_page -- \
  --summary "$loop_summary" --out "$out/dashboard"

for file in "$out/build_metrics.json" "$out/dashboard/index.html" "$summary" "$loop_summary" \
  "$out/dashboard/loop.html"; do
  if [[ ! -s "$file" ]]; then
    echo "main.sh: FAILED: $file was not written" >&2
    exit 1
  fi
done
echo
echo "main.sh: OK"
echo "  build metrics report: $out/build_metrics.json"
echo "  dashboard:            $out/dashboard/index.html"
echo "  main job summary:     $summary"
echo "  closed loop summary:  $loop_summary"
echo "  closed loop page:     $out/dashboard/loop.html"
echo "  layer server logs:    $run_dir/ $loop_run_dir/"
