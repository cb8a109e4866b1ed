#!/usr/bin/env bash
# CI step: the build under remote-cache faults, against the real Buildbarn storage.
#
#   ci/cache_chaos.sh [--out DIR] [--target LABEL ...] [--case killed|corrupt|evicted ...]
#                     [--kill-after-puts N] [--build-timeout S]
#
# It starts its own bb_storage (ci/buildbarn.sh start cache, on two free 127.0.0.1
# ports, its data in a scratch folder under /var/tmp) and, in one scratch output
# base, builds and tests a small target set (layer 6's Rust core and its unit
# tests, the contracts' descriptor-set genrule) after a `bazel clean` each time,
# with --disk_cache= so that only the remote cache can answer. Each case is proven
# by the sha256 of the final outputs against a clean local build of the same targets:
#   killed   bb_storage SIGKILLed in the middle of `bazel test --remote_cache=...`
#            (after its first CAS writes): the build passes locally, and Bazel's
#            own warnings say why;
#   corrupt  one byte of a stored blob (the largest final output) flipped in
#            bb_storage's block file: that action is re-executed, no wrong output
#            is used, and the next build is served the re-uploaded blob;
#   evicted  the CAS emptied while the action cache is kept: Bazel executes.
# It prints one PASS/FAIL line per case, writes DIR/summary.json (cases, outcome,
# seconds, Bazel version; default DIR build-metrics/cache_chaos, the phases' logs in
# DIR/logs) and stops every process it started, checking that none is left.
# Exit 0 when every case passed, 1 otherwise, 2 for bad flags. Details: ci/cache_chaos.py.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
exec python3 "$repo/ci/cache_chaos.py" "$@"
