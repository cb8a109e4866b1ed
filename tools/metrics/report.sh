#!/usr/bin/env bash
# Builds and tests with the metrics aspect, a JSON profile and the BEP, then writes
# OUT/build_metrics.json, appends OUT/history.jsonl and draws OUT/dashboard/index.html.
#
#   tools/metrics/report.sh --out build-metrics/ [--command test|build] [--targets '//...']
#       [--exec-log] [--history FILE] [--commit SHA] [any other --flag, passed to bazel]
#
# When another command runs the build (CI's tools/test.sh), split it in two:
#   tools/metrics/report.sh --out DIR [--exec-log] --print-flags   # empties DIR/raw, prints
#       the flags that build must take (one a line; it must also build //tools/metrics:report)
#   tools/metrics/report.sh --out DIR --from-raw                   # the report from DIR/raw
#
# Extra bazel flags (e.g. --config=remote-cache, --jobs=4) go to the build; startup
# flags come from $BAZEL_STARTUP_FLAGS (e.g. --output_base=/tmp/ob), the binary from
# $BAZEL. The report is written even when the build or a test fails (--keep_going), but
# then as OUT/build_metrics.failed.json: the last good OUT/build_metrics.json, the
# history and the dashboard stay as they were; the script exits with bazel's status.
# --exec-log also writes the execution log (large), which names the exact actions that
# missed the remote cache.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

BAZEL="${BAZEL:-bazel}"
read -r -a startup <<<"${BAZEL_STARTUP_FLAGS:-}"
out="build-metrics"
command="test"
targets=("//...")
exec_log=0
mode=build  # build | print-flags | from-raw
history=""
commit="${METRICS_COMMIT:-$(git rev-parse HEAD 2>/dev/null || true)}"
extra=()
while (($#)); do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    --command) command="$2"; shift 2 ;;
    --command=*) command="${1#*=}"; shift ;;
    --targets) read -r -a targets <<<"$2"; shift 2 ;;
    --targets=*) read -r -a targets <<<"${1#*=}"; shift ;;
    --exec-log) exec_log=1; shift ;;
    --print-flags) mode=print-flags; shift ;;
    --from-raw) mode=from-raw; shift ;;
    --history) history="$2"; shift 2 ;;
    --history=*) history="${1#*=}"; shift ;;
    --commit) commit="$2"; shift 2 ;;
    --commit=*) commit="${1#*=}"; shift ;;
    --) shift; extra+=("$@"); break ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done
case "$command" in build|test) ;; *) echo "report.sh: --command must be build or test" >&2; exit 2 ;; esac

mkdir -p "$out/raw"
out="$(cd "$out" && pwd)"
raw="$out/raw"
if [[ "$mode" == from-raw ]]; then
  for file in profile.json bep.json; do
    [[ -s "$raw/$file" ]] || { echo "report.sh: --from-raw: $raw/$file missing or empty (run the build with --print-flags' flags first)" >&2; exit 2; }
  done
else
  # A report never mixes this build's files with an earlier one's.
  rm -f "$raw/profile.json" "$raw/bep.json" "$raw/exec_log.json"
fi

flags=(
  --keep_going
  "--profile=$raw/profile.json"
  --noslim_profile
  --experimental_profile_include_target_label
  --experimental_profile_include_primary_output
  "--build_event_json_file=$raw/bep.json"
  --aspects=//tools/metrics:defs.bzl%metrics_aspect
  --output_groups=+metrics
)
((exec_log)) && flags+=("--execution_log_json_file=$raw/exec_log.json")

status=0
case "$mode" in
  print-flags) printf '%s\n' "${flags[@]}"; exit 0 ;;
  build)
    set +e
    "$BAZEL" "${startup[@]}" "$command" "${flags[@]}" "${extra[@]}" -- "${targets[@]}" //tools/metrics:report \
      2>&1 | tee "$raw/bazel.log"
    status="${PIPESTATUS[0]}"
    set -e
    ;;
esac

bin="$("$BAZEL" "${startup[@]}" info "${extra[@]}" bazel-bin 2>/dev/null ||
  "$BAZEL" "${startup[@]}" info bazel-bin 2>/dev/null)"
report=("$bin/tools/metrics/report/report")
if [[ ! -x "${report[0]}" ]]; then
  report=("$BAZEL" "${startup[@]}" run "${extra[@]}" //tools/metrics:report --)
fi
args=(--profile "$raw/profile.json" --bep "$raw/bep.json" --out "$out" --commit "$commit"
  --bazel-exit-status "$status")
[[ -f "$raw/exec_log.json" ]] && args+=(--exec-log "$raw/exec_log.json")
[[ -n "$history" ]] && args+=(--history "$history")
"${report[@]}" "${args[@]}"

how="bazel exit status $status"
[[ "$mode" == from-raw ]] && how="from $raw, the caller's build"
if ((status == 0)); then
  echo "report.sh: $out/build_metrics.json, dashboard: $out/dashboard/index.html ($how)"
else
  echo "report.sh: $how: the failed build's report is $out/build_metrics.failed.json;" \
    "$out/build_metrics.json and the dashboard still show the last good build"
fi
exit "$status"
