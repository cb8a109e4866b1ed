#!/usr/bin/env bash
# The images are reproducible: builds in two fresh output bases must give the same
# manifest digest for every layer image (stamped with the commit both times, so keep
# the tree unchanged while it runs). A difference is explained file by file.
#   tools/oci/check_digest.sh [OUT.json]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BAZEL="${BAZEL:-bazel}"
out="${1:-}"
# The image actions and the Debian base layer's run in both builds, never taken from
# a disk or remote cache (which would hand build b the very layout build a made).
flags=(--jobs="${JOBS:-2}" --workspace_status_command="$PWD/tools/oci/workspace_status.sh"
  --modify_execution_info=OciImage=+no-cache,DebianLayer=+no-cache)
declare -A digests
keep="$(mktemp -d /tmp/chimera-oci-layouts.XXXXXX)"  # both builds' layouts, to explain a difference
for run in a b; do
  base="$(mktemp -d "/tmp/chimera-oci-$run.XXXXXX")"
  "$BAZEL" --output_base="$base" build "${flags[@]}" //tools/oci:images >"$base.log" 2>&1 || {
    tail -20 "$base.log" >&2
    echo "check_digest: build $run failed (log: $base.log)" >&2
    exit 1
  }
  bin="$("$BAZEL" --output_base="$base" info "${flags[@]}" bazel-bin 2>/dev/null)"
  for digest in "$bin"/tools/oci/*.digest; do
    image="$(basename "$digest" .digest)"
    digests["$run/$image"]="$(cat "$digest")"
    mkdir -p "$keep/$run"
    cp -r "$bin/tools/oci/$image" "$keep/$run/$image"
  done
  "$BAZEL" --output_base="$base" shutdown
  rm -rf "$base"
done
status=0
json="{"
for key in $(printf '%s\n' "${!digests[@]}" | sort); do
  [[ "$key" == a/* ]] || continue
  image="${key#a/}"
  a="${digests[a/$image]}" b="${digests[b/$image]:-missing}"
  if [[ "$a" == "$b" ]]; then
    echo "same      $image $a"
  else
    echo "DIFFERENT $image $a vs $b"
    python3 tools/oci/private/diff_layouts.py "$keep/a/$image" "$keep/b/$image" | sed 's/^/    /'
    status=1
  fi
  json+="\"$image\": {\"a\": \"$a\", \"b\": \"$b\"},"
done
json="${json%,}}"
[[ -z "$out" ]] || echo "$json" >"$out"
if ((status == 0)); then rm -rf "$keep"; else echo "check_digest: layouts kept in $keep"; fi
exit "$status"
