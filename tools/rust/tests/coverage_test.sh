#!/usr/bin/env bash
# The coverage build end to end, on checksum_wasm_test (whose dependency, checksum, is an
# instrumented rlib): its launcher writes a raw profile into TEST_UNDECLARED_OUTPUTS_DIR,
# which Debian's llvm-profdata-14 / llvm-cov-14 read, and both crates' functions ran.
#   coverage_test.sh LAUNCHER
set -euo pipefail
launcher="$1"
binary="${launcher%_coverage_launcher.sh}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
TEST_UNDECLARED_OUTPUTS_DIR="$work" "$launcher" >"$work/test.log" 2>&1 || { cat "$work/test.log"; exit 1; }
profiles=("$work"/*.profraw)
[[ -f "${profiles[0]}" ]] || { echo "FAIL: no .profraw in the outputs folder: $(ls "$work")"; exit 1; }
echo "ok: ${profiles[0]##*/}"
llvm-profdata-14 merge -sparse "${profiles[@]}" -o "$work/merged.profdata"
llvm-cov-14 export -format=lcov -instr-profile "$work/merged.profdata" "$binary" >"$work/lcov.info"
for source in tools/rust/tests/checksum/src/lib.rs tools/rust/tests/checksum_wasm/src/lib.rs; do
  hit="$(awk -v sf="SF:./$source" '$0 == sf {on = 1} on && /^LH:/ {print substr($0, 4); exit}' "$work/lcov.info")"
  [[ "${hit:-0}" -gt 0 ]] || { echo "FAIL: no covered line of $source in:"; grep '^SF:' "$work/lcov.info"; exit 1; }
  echo "ok: $source: $hit lines covered"
done
