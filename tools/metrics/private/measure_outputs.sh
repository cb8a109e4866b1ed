#!/bin/sh
# Writes one target's metrics JSON: the aspect's static fields plus the size of
# every default output, measured here from the real files (directories: the
# sum of their regular files).
#
# Usage: measure_outputs.sh OUT STATIC_JSON [JSON_ENCODED_PATH FILE]...
set -eu
out="$1"
static="$(cat "$2")"
shift 2

total=0
sep=""
{
  # STATIC_JSON is one JSON object; drop its closing brace and extend it.
  printf '%s,"outputs":[' "${static%\}}"
  while [ "$#" -gt 1 ]; do
    encoded="$1"
    file="$2"
    shift 2
    if [ -d "$file" ]; then
      kind="directory"
      size="$(find -L "$file" -type f -exec stat -L -c %s {} + | awk '{ s += $1 } END { printf "%d", s }')"
    else
      kind="file"
      size="$(stat -L -c %s "$file")"
    fi
    total=$((total + size))
    printf '%s{"path":%s,"size_bytes":%s,"type":"%s"}' "$sep" "$encoded" "$size" "$kind"
    sep=","
  done
  printf '],"total_bytes":%s}\n' "$total"
} >"$out"
