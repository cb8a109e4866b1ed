#!/usr/bin/env bash
# Chimera's CI jobs (the steps of .github/workflows/*.yml); see ci/pipeline/cli.py.
#   ci/pipeline.sh setup|plan|layer N|full|remote|local [...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# setup installs Python itself (a debian:bookworm container has none), so it
# cannot go through the Python CLI.
[[ "${1:-}" == setup ]] && exec tools/bootstrap.sh "${@:2}"
exec python3 -m ci.pipeline.cli "$@"
