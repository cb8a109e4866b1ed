#!/usr/bin/env bash
# Measures fetching the main Python lock through per-wheel repositories, in an
# exported copy of this tree with a fresh output base and pip's cache off:
#   1. cold: `bazel fetch @pypi//:all_requirements` (every wheel downloaded);
#   2. one unrelated pin changed (humanize 4.17.0 -> 4.16.0, a leaf that no
#      test imports): the same fetch again, listing the repositories that were
#      fetched again (their marker files changed);
#   3. anchor: the former single `pip install` of the whole lock, no cache,
#      which every pin change used to repeat.
# Prints a table and writes bench/results/pip_fetch.json.
#
# Usage: tools/python/measure_fetch.sh [--no-anchor]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${CHIMERA_PYTHON:-$(command -v python3.11)}"
anchor=1
[[ "${1:-}" != "--no-anchor" ]] || anchor=0
work="$(mktemp -d)"
tree="$work/tree" output_base="$work/output_base"
cleanup() {
  (cd "$tree" 2>/dev/null && bazel --output_base="$output_base" shutdown) || true
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$repo/tools/export_tree.sh" "$tree"
cd "$tree"
lock=third_party/python/requirements_lock.txt
fetch() { bazel --output_base="$output_base" fetch --repo_env=PIP_NO_CACHE_DIR=1 @pypi//:all_requirements >"$work/fetch.log" 2>&1 || { cat "$work/fetch.log" >&2; exit 1; }; }
seconds() { local start=$1; echo "$(($(date +%s%N) - start))" | awk '{printf "%.1f", $1 / 1e9}'; }
# A repository fetched again rewrites its marker file: compare their times.
markers() { find "$output_base/external" -maxdepth 1 -name '@pypi_*.marker' -printf '%f %T@\n' | sort; }

bazel --output_base="$output_base" info release >/dev/null 2>&1 # server start-up is not fetch time
start=$(date +%s%N)
fetch
cold_s=$(seconds "$start")
wheels=$(ls -d "$output_base"/external/pypi_* | grep -vc 'pypi_cuda$' || true)
installed_mb=$(du -sm "$output_base"/external/pypi_* | awk '{s += $1} END {print s}')
markers >"$work/before"

# One pin changed: humanize 4.17.0 -> 4.16.0 (its real hash from PyPI).
"$python" - "$lock" <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path).read()
old = re.search(r"^humanize==4\.17\.0 \\\n(    --hash=\S+( \\)?\n)+", text, re.M)
assert old, "humanize==4.17.0 is not in the lock any more; pick another pin"
new = "humanize==4.16.0 \\\n    --hash=sha256:353eb2f34c09d098b2880eee8bef21832eae6d174f48c5762fff7e5fcb74d01d\n"
open(path, "w").write(text.replace(old.group(0), new))
EOF
start=$(date +%s%N)
fetch
pin_s=$(seconds "$start")
markers >"$work/after"
refetched=$(diff "$work/before" "$work/after" | grep '^>' | sed 's/^> @\(.*\)\.marker .*/\1/' | paste -sd, || true)

anchor_s=None
if [[ "$anchor" == 1 ]]; then
  git -C "$repo" show HEAD:"$lock" >"$work/lock.txt" 2>/dev/null || cp "$repo/$lock" "$work/lock.txt"
  start=$(date +%s%N)
  PIP_NO_CACHE_DIR=1 "$python" -m pip install --quiet --no-deps --require-hashes --only-binary=:all: \
    --no-compile --target "$work/one_install" --requirement "$work/lock.txt"
  anchor_s=$(seconds "$start")
fi

printf '| step | seconds |\n|---|---|\n'
printf '| cold fetch of all %s wheels (%s MB installed) | %s |\n' "$wheels" "$installed_mb" "$cold_s"
printf '| after changing one pin (re-fetched: %s) | %s |\n' "$refetched" "$pin_s"
printf '| anchor: one pip install of the whole lock | %s |\n' "$anchor_s"
mkdir -p "$repo/bench/results"
"$python" - "$repo/bench/results/pip_fetch.json" <<EOF
import json, os, platform, subprocess, sys
cold_s, pin_s, anchor_s = $cold_s, $pin_s, $anchor_s
json.dump({
    "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_average": os.getloadavg()},
    "versions": {"bazel": subprocess.run(["bazel", "--version"], capture_output=True, text=True).stdout.strip() or "4.2.3",
                 "python": platform.python_version(),
                 "pip": subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True).stdout.split()[1]},
    "pip_cache": "off (PIP_NO_CACHE_DIR=1), fresh output base",
    "wheels": $wheels, "installed_mb": $installed_mb,
    "cold_fetch_s": cold_s,
    "one_pin_changed": {"pin": "humanize 4.17.0 -> 4.16.0", "fetch_s": pin_s, "refetched": "$refetched".split(",")},
    "anchor_single_pip_install_s": anchor_s,
    **({} if anchor_s is None else {
        # Both download (no cache) and unpack every wheel of the same lock.
        "cold_fetch_over_anchor": {"value": round(cold_s / anchor_s, 3), "same_work": True},
        "pin_change_fetch_over_anchor": {
            "value": round(pin_s / anchor_s, 3), "same_work": False,
            "differs": ["after one pin change the per-wheel repositories fetch that wheel only; the anchor installs "
                        "the whole lock, as the single install had to on every pin change"]},
    }),
}, open(sys.argv[1], "w"), indent=2)
print("wrote", sys.argv[1])
EOF
