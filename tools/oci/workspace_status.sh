#!/usr/bin/env bash
# --workspace_status_command for image labels: the commit the images are built from.
#   bazel build //tools/oci:images --workspace_status_command=tools/oci/workspace_status.sh
# A tree with uncommitted changes is marked "-dirty", so no image claims a commit it is not.
set -euo pipefail
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [[ "$commit" != unknown ]] && ! git diff --quiet HEAD -- 2>/dev/null; then
  commit="$commit-dirty"
fi
echo "STABLE_GIT_COMMIT $commit"
