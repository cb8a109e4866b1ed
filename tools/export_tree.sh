#!/usr/bin/env bash
# Usage: tools/export_tree.sh DEST
# Copies this repository as a developer has it (tracked files plus untracked,
# not ignored ones; no bazel-* links, no .git) into the new directory DEST, so a
# build there sees exactly the sources and nothing of another output base.
set -euo pipefail
dest="${1:?usage: tools/export_tree.sh DEST}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ ! -e "$dest" ]] || { echo "export_tree: $dest already exists" >&2; exit 2; }
mkdir -p "$dest"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do if [[ -e "$f" || -L "$f" ]]; then printf '%s\0' "$f"; fi; done |
  tar --null -T - -cf -) | tar -xf - -C "$dest"
