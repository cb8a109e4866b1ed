#!/usr/bin/env bash
# CI step (issue 22): `release affected` against Bazel's own configured action graph, on a
# generated multi-language workspace with 18 one-commit mutation kinds. Fails on any false
# negative or on a kind's false positives above its bound; prints the table either way.
#
#   ci/affected_corpus.sh [--json FILE]
#
# About 2 minutes on 2 cores. Bazel runs with its own output root under /tmp (its servers are
# shut down at the end) and never touches this workspace's output base.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

json=""
if [[ "${1:-}" == "--json" ]]; then
  [[ -n "${2:-}" ]] || { echo "affected_corpus: --json needs a file" >&2; exit 2; }
  json="$2"; shift 2
fi
[[ $# -eq 0 ]] || { echo "affected_corpus: unexpected argument $1" >&2; exit 2; }
command -v bazel >/dev/null || { echo "affected_corpus: bazel not on PATH" >&2; exit 2; }
python=/usr/bin/python3.11
[[ -x "$python" ]] || python="$(command -v python3)"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 9))' \
  || { echo "affected_corpus: needs Python >= 3.9 ($python)" >&2; exit 2; }

workdir="$(mktemp -d /tmp/affcorpus.XXXXXX)"  # short: Bazel's socket path has a length limit
cleanup() {
  for workspace in "$workdir/run/repo" "$workdir"/run/cache/checkouts/*/src; do
    [[ -d "$workspace" ]] && (cd "$workspace" && bazel --output_user_root="$workdir/run/bz" shutdown >/dev/null 2>&1 || true)
  done
  chmod -R u+w "$workdir" 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT

started=$SECONDS
args=(--workdir "$workdir/run")
[[ -n "$json" ]] && args+=(--json "$json")
status=0
timeout 360 "$python" tools/release/tests/affected_corpus.py "${args[@]}" || status=$?
echo "affected_corpus: exit $status after $((SECONDS - started)) s"
exit "$status"
