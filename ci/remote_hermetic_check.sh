#!/usr/bin/env bash
# Remote actions are hermetic: builds the targets twice from one copy of the tree
# (tools/export_tree.sh), once locally (linux-sandbox) and once through a freshly
# started Buildbarn (--config=remote: every action in bb_runner, as an
# unprivileged user without network), each in a new output base, and compares the
# SHA-256 of every output file both builds produced. Exit 1 on any difference or
# when an output exists in one build only.
#
# Usage: ci/remote_hermetic_check.sh [OUT] [TARGET_PATTERN...]
#   OUT (default build-metrics/remote-hermetic): local.sha256, remote.sha256,
#   diff.txt, both Bazel logs, buildbarn_status.json, summary.json.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BAZEL="${BAZEL:-bazel}"
out="${1:-$repo/build-metrics/remote-hermetic}"
shift || true
patterns=("${@:-//...}")
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d /tmp/chimera-hermetic.XXXXXX)"
tree="$work/chimera"
chmod 0755 "$work"  # Buildbarn's unprivileged runner works below it
export BUILDBARN_DATA="$work/buildbarn"
cleanup() {
  "$repo/ci/buildbarn.sh" stop >/dev/null 2>&1 || true
  local base
  for base in "$work"/ob-*; do
    [[ -d "$base" ]] && (cd "$tree" && "$BAZEL" --output_base="$base" shutdown >/dev/null 2>&1) || true
  done
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM  # so that cleanup runs when CI cancels the step

# Every regular file an action wrote under bazel-out/*/bin. Runfiles trees and
# manifests are left out: Bazel writes those itself, on the client, both ways.
output_digests() {
  (cd "$1/execroot/chimera/bazel-out" &&
    find . -path './*/bin/*' -type f -not -path '*.runfiles/*' -not -name '*.runfiles_manifest' \
      -not -name MANIFEST -print0 | sort -z | xargs -0 -r sha256sum) | sort -k2
}

build() {
  local name="$1"
  shift
  echo "== $name build of ${patterns[*]}"
  local started=$SECONDS
  (cd "$tree" && "$BAZEL" --output_base="$work/ob-$name" build --nobuild_runfile_links "$@" "${patterns[@]}") \
    >"$out/$name.log" 2>&1 || {
    tail -20 "$out/$name.log" >&2
    echo "remote_hermetic_check: the $name build failed (log: $out/$name.log)" >&2
    exit 2
  }
  echo "$name: $((SECONDS - started)) s, $(grep -E '^INFO: [0-9]+ process' "$out/$name.log" | tail -1)"
  output_digests "$work/ob-$name" >"$out/$name.sha256"
}

"$repo/tools/export_tree.sh" "$tree"
build local --config=system-python
"$repo/ci/buildbarn.sh" start execution
remote_flags=(--config=remote)
# Another port than .bazelrc's (e.g. a second Buildbarn beside one in use).
[[ -z "${BUILDBARN_PORT:-}" ]] || remote_flags+=("--remote_executor=grpc://127.0.0.1:$BUILDBARN_PORT")
build remote "${remote_flags[@]}"
"$repo/ci/buildbarn.sh" status >"$out/buildbarn_status.json" || true

compared="$(wc -l <"$out/local.sha256")"
differences=0
if ! diff "$out/local.sha256" "$out/remote.sha256" >"$out/diff.txt"; then
  differences="$(grep -c '^[<>]' "$out/diff.txt")"
fi
remote_processes="$(grep -E '^INFO: [0-9]+ process' "$out/remote.log" | tail -1 | grep -oE '[0-9]+ remote([,.]|$)' | grep -oE '^[0-9]+' || echo 0)"
cat >"$out/summary.json" <<JSON
{"targets": "${patterns[*]}", "outputs_compared": $compared, "differing_lines": $differences, "remote_processes": $remote_processes, "buildbarn": $(cat "$out/buildbarn_status.json")}
JSON
((compared > 0)) || { echo "remote_hermetic_check: no outputs to compare" >&2; exit 2; }
if ((differences > 0)); then
  head -40 "$out/diff.txt"
  echo "remote_hermetic_check: $differences differing lines between local and remote outputs (see $out/diff.txt)" >&2
  exit 1
fi
((remote_processes > 0)) || { echo "remote_hermetic_check: the remote build ran no remote actions" >&2; exit 1; }
echo "remote_hermetic_check: $compared outputs identical, local vs remote execution ($remote_processes remote processes)"
