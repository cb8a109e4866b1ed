#!/usr/bin/env bash
# The main job: set-up, build and test everything with per-target metrics, run
# all eight layers once with the plan and the closed loop on them, and say where
# the results are.
#
#   tools/main.sh [bazel flags...]     e.g. tools/main.sh --config=remote-cache
#   tools/main.sh --help               this text
#
# 1. tools/bootstrap.sh               pinned Debian packages, versions checked
# 2. tools/metrics/report.sh          bazel test //... with the metrics aspect ->
#                                     build-metrics/build_metrics.json, dashboard/index.html
# 3. bazel run //tools/main:main_job  layers 1-8 started once as subprocesses; on that
#                                     stack: the plan over gRPC (discovery -> planning ->
#                                     validation -> the module through the 3->4 gate ->
#                                     the workload), then the closed loop on online bin
#                                     packing, per generator family (Best Fit's KPIs ->
#                                     refinement's trigger -> resources' grant -> evolution's
#                                     portfolio choice -> generations scored by layer-4
#                                     batches -> canary -> paired A/B test on held-out
#                                     instances -> promote or roll back), then the published
#                                     table (First Fit, Best Fit, evolved, FunSearch's
#                                     published figure) -> build-metrics/binpacking_scoreboard.md;
#                                     with `prometheus` on PATH
#                                     (tools/bootstrap.sh --optional installs it) also
#                                     --prometheus: Debian's prometheus scrapes all eight
#                                     layers -> build-metrics/main_job_summary.json (keys
#                                     closed_loop, monitoring; logs and the loop's genome
#                                     store: main_job_run/)
# 4. bazel run //tools/loop:loop_page  the summary's closed_loop ->
#                                     dashboard/loop.html + PNGs, linked from dashboard/index.html
#
# Stops at the first step that fails, with that step's exit status. A failed build
# or test leaves the last good build-metrics/build_metrics.json, history.jsonl and
# dashboard as they were, and writes build-metrics/build_metrics.failed.json beside
# them. Bazel comes from $BAZEL (default `bazel`), startup flags from
# $BAZEL_STARTUP_FLAGS (e.g. --output_base=/tmp/ob), as for tools/metrics/report.sh.
set -euo pipefail

# Every other argument is a Bazel flag; help is ours, before anything runs.
for arg in "$@"; do
  case "$arg" in
    -h | --help)
      sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
      exit 0
      ;;
  esac
done
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
out="$root/build-metrics"
summary="$out/main_job_summary.json"
run_dir="$out/main_job_run"

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
rm -f "$summary" "$out/dashboard/loop.html" "$out/binpacking_scoreboard.md"
rm -rf "$run_dir"  # the loop resumes from a run dir's genome store: start it fresh
step "build and test //... with metrics (tools/metrics/report.sh)" \
  tools/metrics/report.sh --out "$out" -- "$@"
main_job_flags=(--summary-out "$summary" --run-dir "$run_dir" --scoreboard-out "$out/binpacking_scoreboard.md")
if command -v prometheus >/dev/null; then
  main_job_flags+=(--prometheus)
else
  echo "main.sh: no prometheus on PATH: the main job runs without scraping the layers" \
    "(tools/bootstrap.sh --optional installs it)"
fi
step "main job: eight layers, the plan, the closed loop (//tools/main:main_job)" \
  "$BAZEL" "${startup[@]}" run "$@" //tools/main:main_job -- "${main_job_flags[@]}"
step "closed loop page (//tools/loop:loop_page)" \
  "$BAZEL" "${startup[@]}" run "$@" //tools/loop:loop_page -- \
  --summary "$summary" --out "$out/dashboard"

for file in "$out/build_metrics.json" "$out/dashboard/index.html" "$summary" \
  "$out/dashboard/loop.html" "$out/binpacking_scoreboard.md"; do
  if [[ ! -s "$file" ]]; then
    echo "main.sh: FAILED: $file was not written" >&2
    exit 1
  fi
done
echo
echo "main.sh: OK"
echo "  build metrics report: $out/build_metrics.json"
echo "  dashboard:            $out/dashboard/index.html"
echo "  main job summary:     $summary (the closed loop: its closed_loop key)"
echo "  closed loop page:     $out/dashboard/loop.html"
echo "  bin-packing table:    $out/binpacking_scoreboard.md"
cat "$out/binpacking_scoreboard.md"
echo "  layer server logs:    $run_dir/"
