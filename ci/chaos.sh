#!/usr/bin/env bash
# CI step (opt-in): the chaos tests of //tools/chaos, one after another.
#
#   ci/chaos.sh [CASE ...]       (default: every case; CASE is e.g. layer7_genetics,
#                                 two_layers, same_layer_twice)
#
# Each case runs the main job on a small budget and SIGKILLs layers of its
# supervised stack at seeded points (tools/chaos/chaos.py), then checks the loop's
# decision, the restarts, layer 7's genome store, layer 4's deployment record,
# layer 5's experiment observations, the grant and that every server exited. The
# tests run one at a time (each starts eight servers, about 55-95 s each here; all
# ten took 474 + ~330 s at load 7-20 on 2 cores) and print their check lines; a
# failing case's report is under bazel-testlogs/tools/chaos/.
# Exit 0 when every case passed, 1 otherwise, 2 for an unknown case.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BAZEL="${BAZEL:-bazel}"
all=(layer1_discovery layer2_planning layer3_validation layer4_execution layer5_refinement
     layer6_evolution layer7_genetics layer8_resources two_layers same_layer_twice)
cases=("$@")
[[ ${#cases[@]} -gt 0 ]] || cases=("${all[@]}")
targets=()
for case in "${cases[@]}"; do
  if [[ " ${all[*]} " != *" $case "* ]]; then
    echo "ci/chaos.sh: unknown case '$case' (one of: ${all[*]})" >&2
    exit 2
  fi
  targets+=("//tools/chaos:${case}_chaos_test")
done

cd "$repo"
started=$SECONDS
status=0
"$BAZEL" test --local_test_jobs=1 --test_output=all "${targets[@]}" || status=$?
echo "ci/chaos.sh: ${#targets[@]} case(s) in $((SECONDS - started)) s, bazel exit $status"
exit "$status"
