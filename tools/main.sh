#!/usr/bin/env bash
# The main job: set-up, build everything, and summarize what was built.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tools/bootstrap.sh
bazel build //... "$@"

bin="$(bazel info bazel-bin 2>/dev/null)"
echo
echo "Built outputs are under $bin (symlink: bazel-bin/)."
echo "WASM modules:"
find -L bazel-bin/ -name '*.wasm' -not -path '*.runfiles/*' -printf '  %p  %s bytes\n' | sort
echo "Targets by kind:"
bazel query 'kind("rust_.*|py_.*|proto_library", //...)' --output=label_kind 2>/dev/null |
  awk '{print $1}' | sort | uniq -c | awk '{printf "  %-22s %s\n", $2, $1}'
