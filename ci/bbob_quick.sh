#!/usr/bin/env bash
# CI step: the engine's CMA-ES (BIPOP, float64 and float32 states) on COCO's BBOB
# suite at d = 5, instance 1, 2,000 d evaluations (bench/bbob --quick), gated on
# the number of functions solved to 1e-8 against bench/bbob/quick_baseline.json.
#
#   ci/bbob_quick.sh [OUT_DIR]     (default: build-metrics/bbob)
#
# About 1 minute on an idle 2-core machine (3 minutes under load 20), plus the
# build. Exit status: 1 when a solver solved fewer functions than its baseline
# figure, 2 on bad input, bazel's on a build failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BAZEL="${BAZEL:-bazel}"
read -r -a startup <<<"${BAZEL_STARTUP_FLAGS:-}"

out="${1:-build-metrics/bbob}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
start=$SECONDS
"$BAZEL" "${startup[@]}" run //bench/bbob:bench_bbob -- --quick \
  --baseline "$PWD/bench/bbob/quick_baseline.json" --out "$out/bbob_quick.json"
echo "bbob quick: passed in $((SECONDS - start)) s (results $out/bbob_quick.json)"
