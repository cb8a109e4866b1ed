#!/usr/bin/env bash
# The eight layer images run as podman containers (image user, read-only root
# filesystem, layer 7's and layer 8's volumes), the main job's plan and closed loop
# against them, then everything stopped and layer 7's store found in its volume
# (tools/oci/containers.py). Exit 2 with one message when podman or its settings
# are missing (tools/bootstrap.sh --optional installs and writes them); 1 on any
# failure. Writes the digests that ran to $CHIMERA_IMAGES_RAN (default
# build-metrics/images/ran.json), for `release manifest --images-ran`.
#
#   ci/containers.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
conf="${CONTAINERS_CONF:-/etc/containers/containers.conf}"  # podman reads CONTAINERS_CONF instead when set
die() { echo "containers: $1" >&2; exit 2; }
command -v podman >/dev/null || die "podman is missing (Debian package podman: tools/bootstrap.sh --optional)"
command -v runc >/dev/null || die "runc is missing (Debian package runc: tools/bootstrap.sh --optional)"
runtime="$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>&1)" ||
  die "podman info fails: $(tail -n 1 <<<"$runtime") (runtime = \"runc\" under [engine] in $conf: tools/bootstrap.sh --optional)"
[[ "$runtime" == runc ]] || die "podman's runtime is '$runtime': set runtime = \"runc\" under [engine] in $conf (tools/bootstrap.sh --optional)"
grep -qxF 'default_ulimits = []' "$conf" 2>/dev/null || die "$conf lacks default_ulimits = [] under [containers] (tools/bootstrap.sh --optional)"

ran="${CHIMERA_IMAGES_RAN:-build-metrics/images/ran.json}"
mkdir -p "$(dirname "$ran")"
SECONDS=0
bazel build //tools/oci:images //tools/oci:containers //tools/main:main_job
echo "containers: images and tools built in ${SECONDS} s"
bazel-bin/tools/oci/containers --images bazel-bin/tools/oci --main-job bazel-bin/tools/main/main_job \
  --ran-out "$ran" -- \
  --tasks 6 --families or --items 200 --window 8 --strategy layer7_ga --population 8 --generations 1 \
  --train-instances 4 --generalisation-instances 0
echo "containers: done in ${SECONDS} s"
