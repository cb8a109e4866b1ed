#!/usr/bin/env bash
# Vulnerability audit of the hash-locked Python dependencies (the specification's
# security-scanning step): pip-audit, pinned in its own hashed lock (ci/audit/), against
# third_party/python/requirements_lock.txt through PyPI's JSON API (`-s pypi`; OSV is
# not reachable from these machines). Prints a table with the fix versions, applies the
# reviewed ignore list (ci/audit/ignore.json), and says what the Rust side depends on.
#
#   ci/audit.sh [OUT_DIR]          (default build-metrics/audit)
#
# Exit 0: every package audited, no open finding. 1: open findings or packages not
# audited. 3: the vulnerability service cannot be reached: nothing was checked, and the
# step fails rather than passing silently.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-build-metrics/audit}"
lock=third_party/python/requirements_lock.txt
tool_lock=ci/audit/requirements_lock.txt
python="${CHIMERA_PYTHON:-$(command -v python3.11)}"
BAZEL="${BAZEL:-bazel}"
mkdir -p "$out"

# The pinned pip-audit, in a venv keyed by its lock's digest.
venv="${CHIMERA_AUDIT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/chimera-audit/$(sha256sum "$tool_lock" | cut -c1-16)}"
if [[ ! -x "$venv/bin/pip-audit" ]]; then
  echo "audit: installing pip-audit (hash-locked: $tool_lock) into $venv"
  "$python" -m venv "$venv"
  # --no-deps: the lock is the whole closure (pip-compile), and pip re-resolving an extra
  # such as CacheControl[filecache] would reach past it and refuse the unpinned result.
  "$venv/bin/pip" install --quiet --no-deps --require-hashes --only-binary=:all: -r "$tool_lock"
fi

rust_status=0
# The Rust side: every crate in the build and what it depends on, from Bazel itself.
crates="$("$BAZEL" query 'kind("rust_", deps(kind("rust_", //...)))' --output=label)" || {
  echo "audit: FAILED: bazel query for the Rust crates failed (above)" >&2
  exit 1
}
[[ -n "$crates" ]] || {
  echo "audit: FAILED: bazel query found no Rust crate, so nothing would be audited" >&2
  exit 1
}
external="$(grep '^@' <<<"$crates" || true)"
if [[ -n "$external" ]]; then
  echo "audit: Rust crates depend on external repositories (audit them too):" >&2
  echo "$external" >&2
  rust_status=1
else
  echo "Rust: $(wc -l <<<"$crates") crate targets, all in this repository; no third-party crates (std only), nothing to audit."
fi

# pip-audit's PyPI service asks https://pypi.org/pypi/<name>/<version>/json for each
# package. Probe that endpoint with the lock's first package before trusting a result.
read -r probe_name probe_version < <(grep -m1 -oE '^[A-Za-z0-9._-]+==[^ ]+' "$lock" | tr '=' ' ' | awk '{print $1, $2}')
probe_url="https://pypi.org/pypi/$probe_name/$probe_version/json"
probe="$("$python" - "$probe_url" <<'PY'
import sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=20) as reply:
        print(reply.status)
except urllib.error.HTTPError as err:
    print(err.code)
except (urllib.error.URLError, OSError) as err:
    print(f"unreachable ({err})")
PY
)"
if [[ "$probe" != 200 ]]; then
  {
    echo "################################################################################"
    echo "audit: VULNERABILITY SERVICE UNREACHABLE: $probe_url answered: $probe"
    echo "audit: pip-audit -s pypi cannot audit $lock from here; NOTHING WAS CHECKED."
    echo "audit: FAILED (exit 3). Run it where PyPI's per-version JSON API answers."
    echo "################################################################################"
  } >&2
  echo "{\"ok\": false, \"reason\": \"vulnerability service unreachable\", \"probe\": \"$probe_url\", \"answer\": \"$probe\"}" >"$out/audit_summary.json"
  exit 3
fi

status=0
"$venv/bin/pip-audit" --vulnerability-service pypi --disable-pip --require-hashes \
  --requirement "$lock" --format json --output "$out/pip_audit.json" \
  --progress-spinner off --desc off --aliases on || status=$?
if [[ ! -s "$out/pip_audit.json" ]]; then
  echo "audit: FAILED: pip-audit exited $status without writing $out/pip_audit.json" >&2
  exit 1
fi
report_status=0
"$python" ci/audit/report.py "$out/pip_audit.json" --ignore ci/audit/ignore.json | tee "$out/table.txt" || report_status=$?

((rust_status == 0)) || exit 1
exit "$report_status"
