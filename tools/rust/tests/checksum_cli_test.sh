#!/usr/bin/env bash
# The rust_binary runs and links its rust_library dependency.
set -euo pipefail
output="$("$1" Wikipedia "")"
expected=$'11e60398\n00000001'
[[ "$output" == "$expected" ]] || { echo "got: $output"; echo "want: $expected"; exit 1; }
echo "checksum_cli: ok"
