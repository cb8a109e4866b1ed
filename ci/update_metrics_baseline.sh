#!/usr/bin/env bash
# Regenerates ci/metrics_baseline.json, the reference the metrics gate compares CI's
# report with. Run it on a cold build (a fresh output base, no remote cache) so its
# times compare with CI's, after a change that is meant to move the figures:
#
#   ci/update_metrics_baseline.sh                 # cold build+test of //... here
#   ci/update_metrics_baseline.sh build-metrics   # or: from an existing report folder
#   ci/coverage.sh --update-baseline              # the per-layer coverage figures
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

src="${1:-}"
if [[ -z "$src" ]]; then
  src="$(mktemp -d)"
  BAZEL_STARTUP_FLAGS="--output_base=$src/output_base ${BAZEL_STARTUP_FLAGS:-}" \
    tools/metrics/report.sh --out "$src" || echo "update_metrics_baseline: the build or a test failed; the baseline records it"
fi
raw="$src/raw"
[[ -f "$raw/profile.json" && -f "$raw/bep.json" ]] || { echo "no $raw/profile.json or bep.json" >&2; exit 2; }
aspect_args=()
[[ -d "$raw/aspect" ]] && aspect_args=(--aspect-dir "$raw/aspect")

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
bazel ${BAZEL_STARTUP_FLAGS:-} run //tools/metrics:report -- --profile "$raw/profile.json" --bep "$raw/bep.json" \
  "${aspect_args[@]}" --out "$tmp" --no-history --no-dashboard --no-outputs
# The coverage figures are recorded separately (ci/coverage.sh --update-baseline): keep them.
bazel ${BAZEL_STARTUP_FLAGS:-} run //tools/metrics/coverage:attach -- --report "$tmp/build_metrics.json" \
  --from-report "$PWD/ci/metrics_baseline.json" --out "$tmp/build_metrics.json"
cp "$tmp/build_metrics.json" ci/metrics_baseline.json
echo "ci/metrics_baseline.json: $(grep -o '"project_status": "[^"]*"' ci/metrics_baseline.json)"
