#!/usr/bin/env bash
# Runs every test in the repository: set-up, then `bazel test //...`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tools/bootstrap.sh
exec bazel test //... "$@"
