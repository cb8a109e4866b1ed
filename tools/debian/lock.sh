#!/usr/bin/env bash
# Re-locks the images' base layer: resolves third_party/debian/base.in's packages
# against Debian 12's signed package index and rewrites base.lock.json (versions,
# pool URLs, SHA-256). Review the diff, then build: `bazel build //tools/oci:base`.
#
#   tools/debian/lock.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${CHIMERA_PYTHON:-$(command -v python3.11 || command -v python3 || true)}"
if [[ -z "$python" ]]; then
  echo "lock.sh: no python3 on PATH (set CHIMERA_PYTHON)" >&2
  exit 2
fi
if ! command -v gpgv >/dev/null; then
  echo "lock.sh: gpgv is missing (Debian package gpgv): it verifies the package index's signature" >&2
  exit 2
fi
exec "$python" "$root/tools/debian/lock.py" "$root/third_party/debian/base.in" "$root/third_party/debian/base.lock.json"
