#!/usr/bin/env bash
# Test driver for proto_breaking: runs the checker binary given as $1 with the
# remaining arguments, so a BUILD file can turn one comparison into a test.
set -euo pipefail
exec "$@"
