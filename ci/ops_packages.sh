#!/usr/bin/env bash
# Debian packages the operations checks need that the build itself does not
# (tools/bootstrap.sh has no optional set): prometheus for
# //tools/monitoring:prometheus_test, umoci and skopeo for the OCI image checks.
# Without them those tests skip, so CI installs them first and fails loudly when
# it cannot.  Usage: ci/ops_packages.sh [--check]
set -euo pipefail
packages=(prometheus umoci skopeo)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${db:Status-Abbrev}' "$package" 2>/dev/null | grep -q '^ii' || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  echo "ops_packages: present: ${packages[*]}"
  exit 0
fi
if [[ "${1:-}" == --check || "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "ops_packages: missing Debian packages: ${missing[*]} (fix: sudo apt-get install ${missing[*]})" >&2
  exit 2
fi
log=/tmp/chimera-ops-packages-apt.log
if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  tail -5 "$log" >&2
  echo "ops_packages: apt-get could not install ${missing[*]} (log: $log)" >&2
  exit 2
fi
echo "ops_packages: installed ${missing[*]}"
