#!/usr/bin/env bash
# Per-layer line coverage, Python and Rust (the specification's "> 80% target"), opt-in
# so a plain `bazel test` stays fast:
#   ci/coverage.sh [--report BUILD_METRICS_JSON] [--update-baseline] [OUT_DIR [bazel test flags]]
#     OUT_DIR (default build-metrics/coverage) gets coverage.json (Python statements) and
#     rust_coverage.json (Rust lines) per layer.
#     --report FILE: FILE (CI's cold build_metrics.json) plus both figures -> OUT_DIR/build_metrics.json,
#       then the metrics gate against ci/metrics_baseline.json (a drop of more than 2 points
#       in layers.layerN.coverage_percent, python_coverage_percent or rust_coverage_percent fails).
#     --update-baseline: records the figures in ci/metrics_baseline.json instead.
#
# Two `bazel test` runs over COVERAGE_TARGETS (default //layers/...), each building only the
# tests it runs (--build_tests_only), so only what is measured is rebuilt:
# * Python (every test but the rust_tests, and the lint tests that measure nothing), without
#   Rust instrumentation, so nothing is rebuilt: every test's Python processes start
#   coverage.py (the locked one, from @pypi) through tools/metrics/coverage/site/
#   sitecustomize.py on PYTHONPATH; the rc file (COVERAGE_PROCESS_START) puts each
#   process's data in the test's undeclared outputs.
#   (Bazel 4's own PYTHON_COVERAGE hook needs COVERAGE_DIR, which turns test-setup.sh into
#   `bazel coverage` mode and breaks every test.) //tools/metrics/coverage:combine adds
#   them up per layer.
# * Rust (the rust_tests only): --config=coverage-rust compiles their native crates, and
#   only theirs, with -Cinstrument-coverage (Debian's rustc 1.63 and a profiler_builtins
#   crate over Debian's LLVM 14 profile runtime, see tools/rust/private/coverage.bzl);
#   each layer's rust_tests (core and face crate) write .profraw files to their outputs, which
#   //tools/metrics/coverage:rust_combine merges and reads with llvm-profdata/llvm-cov of
#   the compiler's own LLVM version (Debian's llvm-14). The WASM modules the Python
#   tests load are never instrumented, so Rust figures come from the Rust unit tests.
# layers.layerN.coverage_percent = (covered statements + covered lines) / (statements + lines).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
report="" update_baseline=0
while (($#)); do
  case "$1" in
    --report)
      [[ -f "${2:-}" ]] || { echo "coverage: --report ${2:-}: no such file" >&2; exit 2; }
      report="$(realpath "$2")"
      shift 2 ;;
    --update-baseline) update_baseline=1; shift ;;
    *) break ;;
  esac
done
out="$(realpath -m "${1:-build-metrics/coverage}")"
(($# == 0)) || shift  # the rest are bazel test flags
BAZEL="${BAZEL:-bazel}"
read -r -a startup <<<"${BAZEL_STARTUP_FLAGS:-}"
# The instrumented test run and every build after it take the same options, so Bazel keeps
# its analysis cache between them (`info` takes no Starlark flags; the output folders are
# the same with or without).
config=(--config=coverage-rust)
targets="${COVERAGE_TARGETS:-//layers/...}"
bzl() { "$BAZEL" "${startup[@]}" "$@"; }
start=$SECONDS

# The compiler is the toolchain's (Debian's, never the rustc on PATH); the profile tools
# must be of its LLVM version.
rustc=/usr/bin/rustc
llvm_version="$("$rustc" -vV | sed -n 's/^LLVM version: //p')"
llvm_major="${llvm_version%%.*}"
profdata="/usr/bin/llvm-profdata-$llvm_major" llvm_cov="/usr/bin/llvm-cov-$llvm_major"
for tool in "$profdata" "$llvm_cov"; do
  [[ -x "$tool" ]] || { echo "coverage: $tool missing: apt-get install llvm-$llvm_major (tools/bootstrap.sh --optional)" >&2; exit 2; }
done

mkdir -p "$out"
# The locked coverage.py is its own wheel repository (@pypi_coverage, behind @pypi//:coverage).
# The query decides what is measured: its failure, or no Rust test, fails the script.
rust_tests="$(bzl query "kind(rust_test, $targets)")" ||
  { echo "coverage: bazel query for the rust_tests in $targets failed (above)" >&2; exit 1; }
mapfile -t rust_tests <<<"$rust_tests"
[[ -n "${rust_tests[0]}" ]] || { echo "coverage: no rust_test in $targets" >&2; exit 1; }
echo "coverage: Python from the tests in $targets but its ${#rust_tests[@]} rust_tests; Rust from those, instrumented"
bzl build //tools/metrics/coverage:combine //tools/metrics/coverage:rust_combine \
  //tools/metrics/coverage:attach //tools/metrics:gate @pypi//:coverage
package="$(bzl info output_base)/external/pypi_coverage/site-packages/coverage"
[[ -d "$package" ]] || { echo "coverage: $package missing (is coverage in the lock?)" >&2; exit 2; }
# Only coverage itself joins the tests' path, not the whole site-packages.
mkdir -p "$out/path"
ln -sfn "$package" "$out/path/coverage"
status=0
# The lint tests measure nothing (plain `bazel test` runs them).
bzl test --build_tests_only --jobs="${JOBS:-2}" --test_tag_filters=-lint \
  --test_env=PYTHONPATH="$PWD/tools/metrics/coverage/site:$out/path" \
  --test_env=COVERAGE_PROCESS_START="$PWD/tools/metrics/coverage/coveragerc" "$@" \
  -- "$targets" "${rust_tests[@]/#/-}" || status=$?
echo "coverage: Python tests took $((SECONDS - start)) s (exit $status)"
# coverage_test checks the rules' coverage build itself (manual: it needs this script's
# optional packages).
bzl test "${config[@]}" --build_tests_only --jobs="${JOBS:-2}" "$@" \
  -- "${rust_tests[@]}" //tools/rust/tests:coverage_test || status=$((status ? status : $?))
echo "coverage: both test runs took $((SECONDS - start)) s (exit $status)"

data="$out/data"
rm -rf "$data"
mkdir -p "$data"
testlogs="$(bzl info bazel-testlogs)"
while IFS= read -r zip; do
  dest="$data/${zip#"$testlogs"/}"
  mkdir -p "$dest"
  (cd "$dest" && python3 -m zipfile -e "$zip" .)
done < <(find "$testlogs/layers" -name outputs.zip)
bzl run "${config[@]}" //tools/metrics/coverage:combine -- \
  --data-dir "$data" --workspace "$PWD" --out "$out/coverage.json"
bzl run "${config[@]}" //tools/metrics/coverage:rust_combine -- \
  --data-dir "$data" --bin-dir "$(bzl info bazel-bin)" --workspace "$PWD" \
  --llvm-profdata "$profdata" --llvm-cov "$llvm_cov" --compiler "$("$rustc" --version), LLVM $llvm_version" \
  --out "$out/rust_coverage.json"
figures=(--coverage "$out/coverage.json" --rust-coverage "$out/rust_coverage.json")

if ((update_baseline)); then
  ((status == 0)) || { echo "coverage: a test failed; ci/metrics_baseline.json left as it was" >&2; exit "$status"; }
  bzl run "${config[@]}" //tools/metrics/coverage:attach -- --report "$PWD/ci/metrics_baseline.json" \
    "${figures[@]}" --out "$PWD/ci/metrics_baseline.json"
  echo "coverage: recorded in ci/metrics_baseline.json"
fi
if [[ -n "$report" ]]; then
  bzl run "${config[@]}" //tools/metrics/coverage:attach -- --report "$report" "${figures[@]}" \
    --out "$out/build_metrics.json"
  bzl run "${config[@]}" //tools/metrics:gate -- --baseline "$PWD/ci/metrics_baseline.json" \
    --report "$out/build_metrics.json" || status=$((status ? status : $?))
fi
echo "coverage: done in $((SECONDS - start)) s"
exit "$status"
