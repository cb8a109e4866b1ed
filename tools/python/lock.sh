#!/usr/bin/env bash
# Regenerates the hash-pinned locks of third_party/python from their .in files,
# using pip-tools in a throw-away virtualenv on the same pinned interpreter the
# build uses. Existing pins are kept unless the .in file asks otherwise.
#
#   tools/python/lock.sh          # every group
#   tools/python/lock.sh cuda     # one group: requirements_cuda.in
#
# Groups: main (requirements.in -> requirements_lock.txt, every build) and
# cuda (requirements_cuda.in -> requirements_cuda_lock.txt, GPU machines only).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${CHIMERA_PYTHON:-$(command -v python3.11 || true)}"
if [[ -z "$python" ]]; then
  echo "lock.sh: no python3.11 on PATH (set CHIMERA_PYTHON)" >&2
  exit 2
fi
groups=("$@")
[[ ${#groups[@]} -gt 0 ]] || groups=(main cuda)
for group in "${groups[@]}"; do
  case "$group" in
    main | cuda) ;;
    *) echo "lock.sh: unknown group '$group' (main, cuda)" >&2; exit 2 ;;
  esac
done
venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "pip-tools==7.6.2"
cd "$root/third_party/python"
for group in "${groups[@]}"; do
  if [[ "$group" == main ]]; then
    in=requirements.in lock=requirements_lock.txt
  else
    in="requirements_$group.in" lock="requirements_${group}_lock.txt"
  fi
  # No index or find-links lines: a lock names packages, not this machine's pip set-up.
  CUSTOM_COMPILE_COMMAND="tools/python/lock.sh" "$venv/bin/pip-compile" \
    --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
    --output-file "$lock" "$in"
  echo "wrote third_party/python/$lock"
done
