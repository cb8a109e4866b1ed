#!/usr/bin/env bash
# Runs the build benchmarks; results in bench/results/build_*.json (see bench_build.py).
#   bench/build/run.sh [--runs N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
python3 bench/build/bench_build.py aspect-overhead "$@"
python3 bench/build/bench_build.py cold-vs-cached "$@"
