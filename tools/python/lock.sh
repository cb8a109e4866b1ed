#!/usr/bin/env bash
# Regenerates the repository's hash-pinned Python locks from their .in files,
# using pip-tools in a throw-away virtualenv on the same pinned interpreter the
# build uses. Existing pins are kept unless the .in file asks otherwise.
#
#   tools/python/lock.sh          # every group
#   tools/python/lock.sh cuda     # one group: requirements_cuda.in
#
# Groups (the .in file -> its lock):
#   main       third_party/python/requirements.in -> requirements_lock.txt (every build)
#   cuda       third_party/python/requirements_cuda.in -> requirements_cuda_lock.txt (GPU machines)
#   audit      ci/audit/requirements.in -> requirements_lock.txt (pip-audit, ci/audit.sh)
#   buildgrid  ci/buildgrid/requirements.in -> requirements_lock.txt (the remote-cache fallback)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${CHIMERA_PYTHON:-$(command -v python3.11 || true)}"
if [[ -z "$python" ]]; then
  echo "lock.sh: no python3.11 on PATH (set CHIMERA_PYTHON)" >&2
  exit 2
fi
# Prints "<directory> <input> <lock>" for a group, relative to the repository root.
lock_files() {
  case "$1" in
    main) echo "third_party/python requirements.in requirements_lock.txt" ;;
    cuda) echo "third_party/python requirements_cuda.in requirements_cuda_lock.txt" ;;
    audit | buildgrid) echo "ci/$1 requirements.in requirements_lock.txt" ;;
    *) return 1 ;;
  esac
}
groups=("$@")
[[ ${#groups[@]} -gt 0 ]] || groups=(main cuda audit buildgrid)
for group in "${groups[@]}"; do
  if ! lock_files "$group" >/dev/null; then
    echo "lock.sh: unknown group '$group' (main, cuda, audit, buildgrid)" >&2
    exit 2
  fi
done
venv="$(mktemp -d)"
trap 'rm -rf "$venv"' EXIT
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "pip-tools==7.6.2"
for group in "${groups[@]}"; do
  read -r dir in lock < <(lock_files "$group")
  # No index or find-links lines: a lock names packages, not this machine's pip set-up.
  (cd "$root/$dir" && CUSTOM_COMPILE_COMMAND="tools/python/lock.sh $group" "$venv/bin/pip-compile" \
    --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
    --output-file "$lock" "$in")
  echo "wrote $dir/$lock"
done
