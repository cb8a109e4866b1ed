#!/usr/bin/env bash
# CI step: proves the remote cache serves a fresh checkout.
#
#   ci/remote_cache_check.sh [OUT]        (default OUT: build-metrics/remote-cache)
#
# 1. starts a cache with an empty folder (ci/remote_cache.sh; gRPC 127.0.0.1:9092,
#    what --config=remote-cache in .bazelrc points at);
# 2. cold `bazel test //...` in a copy of this tree (tools/export_tree.sh: tracked and
#    untracked files, so a developer's run checks what they have) with a new output
#    base, uploading every result
#    (tools/metrics/report.sh --config=remote-cache --exec-log --out OUT/cold);
# 3. a copy of that copy, taken before the first build, at another path, with another
#    new output base, same cache (OUT/warm): every cacheable action should now be a
#    remote cache hit;
# 4. writes the cache's status figures into OUT/remote_cache_status.json and into the
#    second report (attachments.remote_cache), and fails unless the second run's remote
#    hit rate is at least REMOTE_CACHE_MIN_HIT_RATE (0.99) of its cacheable actions,
#    listing the actions that missed (from the execution log).
# The cache and both Bazel servers are stopped at the end, whatever happens.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BAZEL="${BAZEL:-bazel}"
out="${1:-$repo/build-metrics/remote-cache}"
min_hit_rate="${REMOTE_CACHE_MIN_HIT_RATE:-0.99}"
targets="${REMOTE_CACHE_CHECK_TARGETS:-//...}"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
tmp="$(mktemp -d /tmp/chimera-cache-check.XXXXXX)"
export REMOTE_CACHE_DIR="${REMOTE_CACHE_DIR:-$tmp/cache}"
ob_cold="$tmp/ob_cold"
ob_warm="$tmp/ob_warm"
clone_cold="$tmp/cold/chimera"
clone_warm="$tmp/warm/checkout"
cleanup() {
  "$repo/ci/remote_cache.sh" stop || true
  if [[ -d "$ob_cold" ]]; then (cd "$clone_cold" && "$BAZEL" --output_base="$ob_cold" shutdown >/dev/null 2>&1) || true; fi
  if [[ -d "$ob_warm" ]]; then (cd "$clone_warm" && "$BAZEL" --output_base="$ob_warm" shutdown >/dev/null 2>&1) || true; fi
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# Both checkouts are taken now, so edits made to this tree during the run change neither.
"$repo/tools/export_tree.sh" "$clone_cold"
mkdir -p "$(dirname "$clone_warm")"
cp -a "$clone_cold" "$clone_warm"

"$repo/ci/remote_cache.sh" start

echo "== 1/2 cold build and test in a fresh copy of the tree, uploading to the cache"
cold_status=0
(cd "$clone_cold" && BAZEL_STARTUP_FLAGS="--output_base=$ob_cold" tools/metrics/report.sh --out "$out/cold" \
  --exec-log --targets "$targets" --config=remote-cache) || cold_status=$?

echo "== 2/2 the same sources at another path, new output base, same cache"
warm_status=0
(cd "$clone_warm" && BAZEL_STARTUP_FLAGS="--output_base=$ob_warm" tools/metrics/report.sh --out "$out/warm" \
  --exec-log --targets "$targets" --config=remote-cache) || warm_status=$?

"$repo/ci/remote_cache.sh" status >"$out/remote_cache_status.json" || true

# The warm report again, with the cache's figures attached and the hit-rate verdict.
report="$ob_warm/execroot/chimera/bazel-out/k8-fastbuild/bin/tools/metrics/report/report"
[[ -x "$report" ]] || report="$("$BAZEL" --output_base="$ob_warm" info bazel-bin)/tools/metrics/report/report"
verdict=0
"$report" --profile "$out/warm/raw/profile.json" --bep "$out/warm/raw/bep.json" \
  --exec-log "$out/warm/raw/exec_log.json" --aspect-dir "$out/warm/raw/aspect" --out "$out/warm" \
  --no-history --attach "remote_cache=$out/remote_cache_status.json" --require-hit-rate "$min_hit_rate" || verdict=$?

hits="$(grep -E '^INFO: [0-9]+ process' "$out/warm/raw/bazel.log" | tail -1 || true)"
echo "second run: $hits"
echo "remote cache check: cold exit $cold_status, warm exit $warm_status, hit-rate verdict $verdict (required $min_hit_rate)"
echo "reports: $out/cold/build_metrics.json $out/warm/build_metrics.json"
((cold_status == 0 && warm_status == 0 && verdict == 0))
