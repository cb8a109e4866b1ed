#!/usr/bin/env bash
# Chimera's CI jobs (the steps of .github/workflows/*.yml); see ci/pipeline/cli.py.
#   ci/pipeline.sh setup|plan|layer N|full|remote|local [...]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 -m ci.pipeline.cli "$@"
