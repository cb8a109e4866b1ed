#!/usr/bin/env bash
# Per-layer Python line coverage (the specification's "> 80% target"), opt-in so a
# plain `bazel test` stays fast:
#   ci/coverage.sh [OUT_DIR [bazel test flags]]   (default build-metrics/coverage) -> OUT_DIR/coverage.json
# Every test's Python processes start coverage.py (the locked one, from @pypi) through
# tools/metrics/coverage/site/sitecustomize.py on PYTHONPATH; the rc file
# (COVERAGE_PROCESS_START) puts each process's data in the test's undeclared outputs.
# (Bazel 4's own PYTHON_COVERAGE hook needs COVERAGE_DIR, which turns test-setup.sh into
# `bazel coverage` mode and breaks every test.) Then
# //tools/metrics/coverage:combine adds them up per layer. Feed the file to the report
# with `--coverage OUT_DIR/coverage.json` (layers.layerN.coverage_percent; the gate
# fails a drop of more than 2 points).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="$(realpath -m "${1:-build-metrics/coverage}")"
(($# == 0)) || shift  # the rest are bazel test flags
BAZEL="${BAZEL:-bazel}"
read -r -a startup <<<"${BAZEL_STARTUP_FLAGS:-}"
mkdir -p "$out"
# The locked coverage.py is its own wheel repository (@pypi_coverage, behind @pypi//:coverage).
"$BAZEL" "${startup[@]}" build //tools/metrics/coverage:combine @pypi//:coverage
package="$("$BAZEL" "${startup[@]}" info output_base)/external/pypi_coverage/site-packages/coverage"
[[ -d "$package" ]] || { echo "coverage: $package missing (is coverage in the lock?)" >&2; exit 2; }
# Only coverage itself joins the tests' path, not the whole site-packages.
mkdir -p "$out/path"
ln -sfn "$package" "$out/path/coverage"
status=0
"$BAZEL" "${startup[@]}" test "${COVERAGE_TARGETS:-//layers/...}" --jobs="${JOBS:-2}" \
  --test_env=PYTHONPATH="$PWD/tools/metrics/coverage/site:$out/path" \
  --test_env=COVERAGE_PROCESS_START="$PWD/tools/metrics/coverage/coveragerc" "$@" || status=$?
data="$out/data"
rm -rf "$data"
mkdir -p "$data"
testlogs="$("$BAZEL" "${startup[@]}" info bazel-testlogs)"
while IFS= read -r zip; do
  dest="$data/${zip#"$testlogs"/}"
  mkdir -p "$dest"
  (cd "$dest" && python3 -m zipfile -e "$zip" .)
done < <(find "$testlogs/layers" -name outputs.zip)
"$BAZEL" "${startup[@]}" run //tools/metrics/coverage:combine -- --data-dir "$data" --workspace "$PWD" --out "$out/coverage.json"
exit "$status"
