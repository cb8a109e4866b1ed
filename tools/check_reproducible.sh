#!/usr/bin/env bash
# Builds //... twice, in two fresh output bases and from two copies of the tree at
# different paths (tools/export_tree.sh), and compares the SHA-256 of
# every Rust, WASM and generated Python output. Any difference means an action
# depends on something other than its declared inputs (a path, a time, the
# machine), which would also cost remote-cache hits. Exit 1 on a difference.
#
# Usage: tools/check_reproducible.sh [TARGET_PATTERN...]   (default //...)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
patterns=("${@:-//...}")
work="$(mktemp -d /tmp/chimera-repro.XXXXXX)"
cleanup() {
  local tree
  for tree in "$work"/tree-*; do
    (cd "$tree" && bazel --output_base="$work/base-${tree##*-}" shutdown >/dev/null 2>&1) || true
  done
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

digests() {
  local name="$1" out="$2" base="$work/base-$1"
  tools/export_tree.sh "$work/tree-$name"
  (cd "$work/tree-$name" && bazel --output_base="$base" build --nobuild_runfile_links "${patterns[@]}") >"$out.log" 2>&1 || {
    tail -20 "$out.log" >&2
    echo "check_reproducible: build in $base failed" >&2
    exit 2
  }
  # Rust outputs (rlibs, executables, .so, .wasm) and generated Python.
  (cd "$base/execroot/chimera/bazel-out" &&
    find . -path '*/bin/*' -type f \
      \( -name '*.rlib' -o -name '*.wasm' -o -name '*.so' -o -name '*_pb2.py' -o -name '*_pb2_grpc.py' -o -perm -u+x \) \
      -not -path '*.runfiles/*' -not -name '*.runfiles_manifest' -not -name '*.sh' -not -name '*.py' -print0 |
    sort -z | xargs -0 -r sha256sum
    find . -path '*/bin/*' -type f \( -name '*_pb2.py' -o -name '*_pb2_grpc.py' \) -print0 | sort -z | xargs -0 -r sha256sum
  ) | sort -k2 >"$out"
}

digests 1 "$work/first.sha256"
digests 2 "$work/second.sha256"
count="$(wc -l <"$work/first.sha256")"
if ! diff -u "$work/first.sha256" "$work/second.sha256" >"$work/diff.txt"; then
  cat "$work/diff.txt"
  echo "check_reproducible: outputs differ between two clean builds (see above)" >&2
  exit 1
fi
[[ "$count" -gt 0 ]] || { echo "check_reproducible: no outputs to compare" >&2; exit 2; }
echo "check_reproducible: $count outputs (Rust, WASM, generated Python) identical across two clean output bases and source paths"
