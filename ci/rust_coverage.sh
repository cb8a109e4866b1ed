#!/usr/bin/env bash
# Rust line coverage of each layer's core crate (the specification's "> 80% target"):
# the crate's unit tests compiled with -Cinstrument-coverage, run, then llvm-profdata /
# llvm-cov of the compiler's LLVM version. Std-only crates plus the shared //rust/wire and
# //rust/guest_abi, so plain rustc builds them from the same sources as Bazel (edition 2021); outside
# Bazel because the Rust rules have no instrumentation switch.
#
# The compiler: $RUSTC, else Debian's /usr/bin/rustc (1.63, LLVM 14, with Debian's
# llvm-profdata-14/llvm-cov-14) when it has the profiler runtime. Debian builds it
# without (`can't find crate for profiler_builtins`), so the script then takes the
# `rustc` on PATH that has one and the llvm-*-<its LLVM major> tools (e.g. rustup's 1.95
# with Debian's llvm-22), and records which compiler measured.
#   ci/rust_coverage.sh [OUT_DIR]   (default build-metrics/coverage) -> OUT_DIR/rust_coverage.json
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="$(realpath -m "${1:-build-metrics/coverage}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

has_profiler() {
  echo 'fn main() {}' >"$work/probe.rs"
  "$1" -Cinstrument-coverage "$work/probe.rs" -o "$work/probe" >/dev/null 2>&1
}
if [[ -z "${RUSTC:-}" ]]; then
  for candidate in /usr/bin/rustc $(type -ap rustc); do
    if has_profiler "$candidate"; then RUSTC="$candidate"; break; fi
    echo "rust_coverage: $candidate ($("$candidate" --version)) has no profiler runtime; trying the next rustc" >&2
  done
fi
[[ -n "${RUSTC:-}" ]] || { echo "rust_coverage: no rustc with -Cinstrument-coverage support found" >&2; exit 2; }
llvm_major="$("$RUSTC" -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')"
profdata="llvm-profdata-$llvm_major" cov="llvm-cov-$llvm_major"
for tool in "$profdata" "$cov"; do
  command -v "$tool" >/dev/null || { echo "rust_coverage: $tool not found (apt-get install llvm-$llvm_major)" >&2; exit 2; }
done
compiler="$("$RUSTC" --version), LLVM $llvm_major"
echo "rust_coverage: measuring with $RUSTC ($compiler) and $profdata/$cov"
# The shared crates the cores use (//rust/wire as chimera_wire, //rust/guest_abi); every
# core gets both (an unused --extern is harmless).
"$RUSTC" --edition 2021 --crate-type rlib --crate-name chimera_wire -Cinstrument-coverage \
  rust/wire/src/lib.rs --out-dir "$work"
"$RUSTC" --edition 2021 --crate-type rlib --crate-name guest_abi -Cinstrument-coverage \
  rust/guest_abi/src/lib.rs --out-dir "$work"
json="{\"compiler\": \"$compiler\", \"layers\": {"
for root in layers/layer*_*/rust/src/lib.rs; do
  dir="${root%/rust/src/lib.rs}"
  layer="$(basename "$dir" | cut -d_ -f1)"
  test_bin="$work/$layer-core-test"
  "$RUSTC" --edition 2021 --test -Cinstrument-coverage --crate-name "${layer}_core" \
    --extern chimera_wire="$work/libchimera_wire.rlib" --extern guest_abi="$work/libguest_abi.rlib" -L "$work" "$root" -o "$test_bin"
  LLVM_PROFILE_FILE="$work/$layer-%p-%m.profraw" "$test_bin" -q >"$work/$layer.log" 2>&1 || {
    cat "$work/$layer.log" >&2
    echo "rust_coverage: $layer core tests failed" >&2
    exit 1
  }
  "$profdata" merge -sparse "$work/$layer"-*.profraw -o "$work/$layer.profdata"
  # The layer's own sources only (not the shared crates, not the standard library).
  figures="$("$cov" export --summary-only --instr-profile "$work/$layer.profdata" "$test_bin" \
    --ignore-filename-regex='(^|/)rust/(wire|guest_abi)/|^/rustc/|/library/' |
    python3 -c 'import json,sys; t=json.load(sys.stdin)["data"][0]["totals"]["lines"]; print(t["count"], t["covered"], round(t["percent"], 2))')"
  read -r lines covered percent <<<"$figures"
  echo "$layer: Rust line coverage $percent% ($covered of $lines lines, $dir/rust/src)"
  json+="\"$layer\": {\"lines\": $lines, \"covered\": $covered, \"coverage_percent\": $percent},"
done
echo "${json%,}}}" | python3 -m json.tool >"$out/rust_coverage.json"
echo "wrote $out/rust_coverage.json"
