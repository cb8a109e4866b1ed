#!/usr/bin/env bash
# Integration test of ci/remote_cache.sh: starts its own cache on free loopback
# ports with its own folder, builds and tests a tiny fixture workspace with
# --remote_cache, cleans, rebuilds, and checks that every spawn of the rebuild was a
# remote cache hit. A CI step rather than a `bazel test`: it runs a nested Bazel
# (its own server and output base), which does not belong inside a sandboxed test.
#
#   ci/remote_cache_roundtrip.sh        prints "remote cache round trip: N passed, 0 failed"
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BAZEL="${BAZEL:-bazel}"

tmp="$(mktemp -d /tmp/chimera-roundtrip.XXXXXX)"
free_port() {
  local port
  for port in $(shuf -i 20000-39999 -n 50); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return 0; }
  done
  return 1
}
export REMOTE_CACHE_DIR="$tmp/cache"
REMOTE_CACHE_GRPC_PORT="$(free_port)"
REMOTE_CACHE_HTTP_PORT="$(free_port)"
export REMOTE_CACHE_GRPC_PORT REMOTE_CACHE_HTTP_PORT
ws="$tmp/ws"
ob="$tmp/output_base"
cleanup() {
  "$repo/ci/remote_cache.sh" stop || true
  if [[ -d "$ob" ]]; then (cd "$ws" && "$BAZEL" --output_base="$ob" shutdown >/dev/null 2>&1) || true; fi
  chmod -R u+w "$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The fixture: two chained genrules and a test, on Chimera's offline Bazel setup.
mkdir -p "$ws/pkg"
{
  echo 'workspace(name = "roundtrip")'
  for shim in rules_cc remote_coverage_tools; do
    echo "local_repository(name = \"$shim\", path = \"$repo/third_party/$shim\")"
  done
} >"$ws/WORKSPACE"
{
  grep -E '^common --override_repository=' "$repo/.bazelrc"
  echo "build --spawn_strategy=linux-sandbox --incompatible_strict_action_env --symlink_prefix=/"
  echo "build --remote_cache=grpc://127.0.0.1:$REMOTE_CACHE_GRPC_PORT --remote_upload_local_results=true"
} >"$ws/.bazelrc"
cat >"$ws/pkg/BUILD" <<'BUILD_END'
genrule(name = "data", outs = ["data.bin"], cmd = "head -c 100000 /dev/zero > $@")
genrule(name = "digest", srcs = [":data"], outs = ["digest.txt"], cmd = "sha256sum $< | cut -c1-64 > $@")
sh_test(name = "digest_test", srcs = ["digest_test.sh"], data = [":digest"])
BUILD_END
printf '#!/bin/sh\ntest "$(wc -c < pkg/digest.txt)" -eq 65\n' >"$ws/pkg/digest_test.sh"
chmod +x "$ws/pkg/digest_test.sh"

"$repo/ci/remote_cache.sh" start
cd "$ws"
"$BAZEL" --output_base="$ob" test //pkg:all >"$tmp/first.log" 2>&1 || { cat "$tmp/first.log"; exit 1; }
"$BAZEL" --output_base="$ob" clean >/dev/null 2>&1
"$BAZEL" --output_base="$ob" test //pkg:all --build_event_json_file="$tmp/bep.json" >"$tmp/second.log" 2>&1 ||
  { cat "$tmp/second.log"; exit 1; }
"$repo/ci/remote_cache.sh" status >"$tmp/status.json" || true

passed=0
failed=0
check() {
  if eval "$2"; then
    passed=$((passed + 1))
    echo "ok: $1"
  else
    failed=$((failed + 1))
    echo "FAILED: $1"
  fi
}
summary="$(grep -E '^INFO: [0-9]+ process' "$tmp/second.log" | tail -1)"
echo "rebuild: $summary"
hits="$(grep -oE '[0-9]+ remote cache hit' <<<"$summary" | grep -oE '^[0-9]+' || echo 0)"
local_runs=0
for n in $(grep -oE '[0-9]+ (linux-sandbox|processwrapper-sandbox|local)' <<<"$summary" | grep -oE '^[0-9]+'); do
  local_runs=$((local_runs + n))
done
echo "cache: $(cat "$tmp/status.json")"
check "the rebuild got remote cache hits ($hits)" '[[ "$hits" -ge 3 ]]'
check "no spawn of the rebuild ran locally ($local_runs)" '[[ "$local_runs" -eq 0 ]]'
check "the test result came from the remote cache" 'grep -q "\"cachedRemotely\":true" "$tmp/bep.json"'
check "the cache holds blobs" 'grep -qE "\"disk_files\": [1-9]" "$tmp/status.json"'
echo "remote cache round trip: $passed passed, $failed failed"
((failed == 0))
