#!/usr/bin/env bash
# Regenerates third_party/python/requirements_lock.txt from requirements.in,
# with a --hash pin for every distribution, using pip-tools in a throw-away
# virtualenv on the same pinned interpreter the build uses.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${CHIMERA_PYTHON:-$(command -v python3.11 || true)}"
if [[ -z "$python" ]]; then
  echo "lock.sh: no python3.11 on PATH (set CHIMERA_PYTHON)" >&2
  exit 2
fi
venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "pip-tools==7.6.2"
cd "$root/third_party/python"
CUSTOM_COMPILE_COMMAND="tools/python/lock.sh" "$venv/bin/pip-compile" \
  --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
  --output-file requirements_lock.txt requirements.in
echo "wrote third_party/python/requirements_lock.txt"
