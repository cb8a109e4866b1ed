#!/usr/bin/env bash
# Regenerates ci/audit/requirements_lock.txt (hash-pinned) from requirements.in,
# with the same pip-tools and interpreter as tools/python/lock.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${CHIMERA_PYTHON:-$(command -v python3.11)}"
venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "pip-tools==7.6.2"
cd "$here"
CUSTOM_COMPILE_COMMAND="ci/audit/lock.sh" "$venv/bin/pip-compile" --quiet --generate-hashes \
  --allow-unsafe --strip-extras --no-emit-index-url --output-file requirements_lock.txt requirements.in
