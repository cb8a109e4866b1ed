#!/usr/bin/env bash
# Two clones on machines with different PATHs get the same action keys, so they share
# remote-cache entries: exports this tree twice (tools/export_tree.sh), analyses the
# targets in each with its own output base, once with a python3.11 shim first on PATH
# (as pyenv puts one) and once with PATH=/usr/bin:/bin, and compares every action's
# key (bazel aquery). Exit 1 on any difference, 2 on a failed step. Analysis only:
# nothing is built and no wheel is fetched (the targets have no third-party deps).
#
# Usage: ci/action_keys_check.sh [OUT] [TARGET...]
#   OUT (default build-metrics/action-keys): shim.keys, plain.keys (one line an action:
#   mnemonic, outputs, key), both aquery logs, diff.txt.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BAZEL="$(command -v "${BAZEL:-bazel}")"
out="${1:-$repo/build-metrics/action-keys}"
shift || true
targets=("${@:-//tools/python:interpreter}")
[[ $# -gt 0 ]] || targets+=(//layers/layer1_discovery:discovery_core)
expression="$(printf '%s + ' "${targets[@]}")"
expression="${expression% + }"  # aquery takes one expression
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d /tmp/chimera-action-keys.XXXXXX)"
cleanup() {
  local name
  for name in shim plain; do
    [[ -d "$work/ob-$name" ]] && (cd "$work/$name" && "$BAZEL" --output_base="$work/ob-$name" shutdown >/dev/null 2>&1) || true
  done
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A python3.11 on PATH that is not /usr/bin/python3.11 by name, as a pyenv shim is.
mkdir -p "$work/shims"
ln -s /usr/bin/python3.11 "$work/shims/python3.11"

keys() {
  local name="$1" path="$2"
  "$repo/tools/export_tree.sh" "$work/$name"
  local started=$SECONDS
  (cd "$work/$name" && env -u CHIMERA_PYTHON PATH="$path" \
    "$BAZEL" --output_base="$work/ob-$name" aquery --output=text "$expression") \
    >"$out/$name.aquery" 2>"$out/$name.log" || {
    tail -20 "$out/$name.log" >&2
    echo "action_keys_check: aquery in the $name clone failed (log: $out/$name.log)" >&2
    exit 2
  }
  awk 'function flush() { if (key != "") print mnemonic, outputs, key; key = "" }
       /^[^ ]/ {flush()} /^  Mnemonic:/ {mnemonic = $2} /^  ActionKey:/ {key = $2}
       /^  Outputs:/ {outputs = $0; sub(/^  Outputs: /, "", outputs)} END {flush()}' \
    "$out/$name.aquery" | sort >"$out/$name.keys"
  local interpreter
  interpreter="$(sed -n 's/^# Python \(.*\)/\1/p' "$work/ob-$name/external/python3_11/BUILD")"
  echo "$name clone (PATH=$path): $(wc -l <"$out/$name.keys") actions in $((SECONDS - started)) s; Python $interpreter"
}

echo "== action keys of ${targets[*]} in two clones"
keys shim "$work/shims:/usr/bin:/bin"
keys plain "/usr/bin:/bin"
[[ -s "$out/shim.keys" ]] || { echo "action_keys_check: aquery listed no actions" >&2; exit 2; }
if diff "$out/shim.keys" "$out/plain.keys" >"$out/diff.txt"; then
  echo "action_keys_check: OK: the same $(wc -l <"$out/plain.keys") action keys in both clones"
else
  echo "action_keys_check: FAILED: the clones' action keys differ ($out/diff.txt):" >&2
  head -20 "$out/diff.txt" >&2
  exit 1
fi
