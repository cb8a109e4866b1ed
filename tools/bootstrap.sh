#!/usr/bin/env bash
# Installs and checks everything the Chimera build needs on a Debian machine.
# Idempotent: packages already present at the pinned version are left alone.
# Exit status 2 with one message naming the problem and the fix when set-up
# cannot be completed.
#
# Usage: tools/bootstrap.sh [--check]   (--check: report, never install)
set -euo pipefail

# Debian package -> required version prefix ("" = any version).
declare -A PINNED=(
  [bazel-bootstrap]="4.2.3"
  [bazel-platforms]=""
  [bazel-rules-java]=""
  [bazel-rules-proto]=""
  [bazel-skylib]=""
  [gcc]=""
  [libprotobuf-dev]="3.21.12"
  [libstd-rust-dev-wasm32]="1.63.0"
  [lld-14]=""
  [protobuf-compiler]="3.21.12"
  [rust-clippy]="1.63.0"
  [rustc]="1.63.0"
  [rustfmt]="1.63.0"
)
PYTHON_VERSION="3.11"

die() {
  echo "bootstrap: $1" >&2
  echo "bootstrap: fix: $2" >&2
  exit 2
}

installed_version() {
  dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null | awk '$1 == "ii" {print $2}'
}

missing_packages() {
  local package
  for package in "${!PINNED[@]}"; do
    [[ -n "$(installed_version "$package")" ]] || echo "$package"
  done | sort
}

install_packages() {
  local missing=("$@")
  if [[ "$CHECK_ONLY" == 1 ]] || [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
    die "missing Debian packages: ${missing[*]}" "sudo apt-get install ${missing[*]}"
  fi
  echo "bootstrap: installing ${missing[*]}"
  if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >/tmp/chimera-bootstrap-apt.log 2>&1; then
    tail -5 /tmp/chimera-bootstrap-apt.log >&2
    die "apt-get could not install: ${missing[*]} (log: /tmp/chimera-bootstrap-apt.log)" "check access to Debian's package mirror, then rerun tools/bootstrap.sh"
  fi
}

check_versions() {
  local package version
  for package in "${!PINNED[@]}"; do
    version="$(installed_version "$package")"
    [[ -n "$version" ]] || die "Debian package $package is not installed" "apt-get install $package"
    [[ "$version" == "${PINNED[$package]}"* ]] ||
      die "Debian package $package is $version, Chimera pins ${PINNED[$package]}" "apt-get install $package=${PINNED[$package]}*"
  done
}

check_python() {
  local python="${CHIMERA_PYTHON:-$(command -v "python$PYTHON_VERSION" || true)}"
  local version_tuple="${PYTHON_VERSION/./, }"
  [[ -n "$python" ]] || die "no python$PYTHON_VERSION on PATH" "install Python $PYTHON_VERSION with pip, or set CHIMERA_PYTHON"
  "$python" -c "import sys, pip; assert sys.version_info[:2] == ($version_tuple)" 2>/dev/null ||
    die "$python is not a Python $PYTHON_VERSION with pip" "install Python $PYTHON_VERSION with pip, or set CHIMERA_PYTHON"
}

main() {
  CHECK_ONLY=0
  case "${1:-}" in
    "") ;;
    --check) CHECK_ONLY=1 ;;
    *) die "unknown argument: $1" "usage: tools/bootstrap.sh [--check]" ;;
  esac
  local missing
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]})); then
    install_packages "${missing[@]}"
  fi
  check_versions
  check_python
  echo "bootstrap: ok (bazel $(installed_version bazel-bootstrap), rustc $(installed_version rustc), protoc $(installed_version protobuf-compiler), python $PYTHON_VERSION)"
}

main "$@"
