#!/usr/bin/env bash
# Installs and checks everything the Chimera build needs on a Debian 12
# (bookworm) machine. Idempotent: packages already present at the pinned
# version are left alone. Exit status 2 with one message naming the problem and
# the fix when set-up cannot be completed.
#
# Usage: tools/bootstrap.sh [--check] [--optional]
#   --check     report, never install
#   --optional  also the packages of the opt-in checks CI runs (PostgreSQL
#               store tests, Prometheus, OCI image tools, podman and runc with
#               the settings below, browser tests, the fresh-machine check, Rust
#               coverage)
#
# CHIMERA_BOOTSTRAP_ROOT (tests only) prefixes every executable path checked.
set -euo pipefail

# Debian package -> required version prefix ("" = any version).
declare -A PINNED=(
  [bazel-bootstrap]="4.2.3"
  [bazel-platforms]=""
  [bazel-rules-java]=""
  [bazel-rules-proto]=""
  [bazel-skylib]=""
  [binutils]=""
  [ca-certificates]=""
  [gcc]=""
  [git]=""
  [libprotobuf-dev]="3.21.12"
  [libstd-rust-dev-wasm32]="1.63.0"
  # rust-lld (shipped by rustc) is a link to lld-14's lld, which
  # libstd-rust-dev-wasm32 only recommends: every .wasm link needs it.
  [lld-14]="1:14"
  [protobuf-compiler]="3.21.12"
  [python3-pip]=""
  [python3.11]="3.11"
  [python3.11-venv]="3.11"
  [rust-clippy]="1.63.0"
  [rustc]="1.63.0"
  [rustfmt]="1.63.0"
)

# Installed by --optional: the real servers and tools of CI's opt-in checks.
declare -A OPTIONAL=(
  [chromium]=""
  [debootstrap]=""
  # Rust line coverage (ci/coverage.sh): LLVM's profile runtime and llvm-profdata /
  # llvm-cov, all of rustc 1.63's own LLVM version (14.0.6).
  [libclang-rt-14-dev]="1:14.0.6"
  [llvm-14]="1:14.0.6"
  # ci/containers.sh runs the images (CONTAINERS_CONF below).
  [podman]="4.3"
  [runc]=""
  [postgresql]="15"
  [prometheus]="2.42"
  [skopeo]=""
  [systemd-container]=""
  [umoci]=""
)

# Executable the build calls -> the Debian package that provides its target.
# Each must resolve, through every link, to an existing executable file.
declare -A EXECUTABLES=(
  [/usr/bin/bazel]=bazel-bootstrap
  [/usr/bin/cc]=gcc
  [/usr/bin/clippy-driver]=rust-clippy
  [/usr/bin/git]=git
  [/usr/bin/ld]=binutils
  [/usr/bin/protoc]=protobuf-compiler
  [/usr/bin/rust-lld]=lld-14
  [/usr/bin/rustc]=rustc
  [/usr/bin/rustfmt]=rustfmt
)
PYTHON_VERSION="3.11"

# podman's settings on these machines (written by --optional unless the file is
# someone else's): setting rlimits is not permitted, and crun fails with "cgroups in
# hybrid mode not supported", so runc.
CONTAINERS_CONF=/etc/containers/containers.conf
CONTAINERS_MARK="# Written by Chimera's tools/bootstrap.sh --optional"
CONTAINERS_SETTINGS='[containers]
default_ulimits = []

[engine]
runtime = "runc"'

die() {
  echo "bootstrap: $1" >&2
  echo "bootstrap: fix: $2" >&2
  exit 2
}

installed_version() {
  dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null | awk '$1 == "ii" {print $2}'
}

# missing_packages NAME_OF_ASSOCIATIVE_ARRAY
missing_packages() {
  local -n wanted="$1"
  local package
  for package in "${!wanted[@]}"; do
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

# check_versions NAME_OF_ASSOCIATIVE_ARRAY
check_versions() {
  local -n wanted="$1"
  local package version
  for package in "${!wanted[@]}"; do
    version="$(installed_version "$package")"
    [[ -n "$version" ]] || die "Debian package $package is not installed" "apt-get install $package"
    [[ "$version" == "${wanted[$package]}"* ]] ||
      die "Debian package $package is $version, Chimera pins ${wanted[$package]}" "apt-get install $package=${wanted[$package]}*"
  done
}

# An installed package can still leave a tool unusable: a link whose target
# belongs to a package that was never installed (rust-lld -> lld-14).
check_executables() {
  local root="${CHIMERA_BOOTSTRAP_ROOT:-}" path target
  for path in $(printf '%s\n' "${!EXECUTABLES[@]}" | sort); do
    target="$(readlink -m "$root$path")"
    if [[ ! -e "$root$path" && ! -L "$root$path" ]]; then
      die "$path is missing" "apt-get install ${EXECUTABLES[$path]}"
    fi
    if [[ ! -f "$target" || ! -x "$target" ]]; then
      die "$path is a link to ${target#"$root"}, which does not exist" "apt-get install ${EXECUTABLES[$path]}"
    fi
  done
}

check_python() {
  # Debian's interpreter, as the Python toolchain takes it (never the first on PATH).
  local python="${CHIMERA_PYTHON:-${CHIMERA_BOOTSTRAP_ROOT:-}/usr/bin/python$PYTHON_VERSION}"
  local version_tuple="${PYTHON_VERSION/./, }"
  [[ -x "$python" ]] || die "$python is missing" "apt-get install python$PYTHON_VERSION python3-pip python$PYTHON_VERSION-venv, or set CHIMERA_PYTHON"
  "$python" -c "import sys, pip; assert sys.version_info[:2] == ($version_tuple)" 2>/dev/null ||
    die "$python is not a Python $PYTHON_VERSION with pip" "apt-get install python$PYTHON_VERSION python3-pip, or set CHIMERA_PYTHON"
  # tools/python/lock.sh and the CI scripts make virtual environments.
  "$python" -c "import ensurepip, venv" 2>/dev/null ||
    die "$python cannot create virtual environments (no ensurepip)" "apt-get install python$PYTHON_VERSION-venv"
}

# Prints the settings of CONTAINERS_SETTINGS the file lacks, one a line.
missing_podman_settings() {
  local conf="$1" setting
  while IFS= read -r setting; do
    [[ "$setting" == *=* ]] || continue
    grep -qxF -- "$setting" "$conf" 2>/dev/null || echo "$setting"
  done <<<"$CONTAINERS_SETTINGS"
}

configure_podman() {
  local conf="${CHIMERA_BOOTSTRAP_ROOT:-}$CONTAINERS_CONF" missing
  missing="$(missing_podman_settings "$conf" | paste -sd ';' | sed 's/;/; /g')"
  [[ -n "$missing" ]] || return 0
  if [[ "$CHECK_ONLY" == 1 ]] || { [[ -e "$conf" ]] && ! grep -qxF "$CONTAINERS_MARK" "$conf"; }; then
    die "$CONTAINERS_CONF lacks: $missing (podman for ci/containers.sh)" \
      "put default_ulimits = [] under [containers] and runtime = \"runc\" under [engine] in $CONTAINERS_CONF"
  fi
  mkdir -p "$(dirname "$conf")"
  printf '%s\n%s\n' "$CONTAINERS_MARK" "$CONTAINERS_SETTINGS" >"$conf"
  echo "bootstrap: wrote $CONTAINERS_CONF (podman: runtime runc, no default ulimits)"
}

main() {
  CHECK_ONLY=0
  local with_optional=0 arg
  for arg in "$@"; do
    case "$arg" in
      --check) CHECK_ONLY=1 ;;
      --optional) with_optional=1 ;;
      *) die "unknown argument: $arg" "usage: tools/bootstrap.sh [--check] [--optional]" ;;
    esac
  done
  local sets=(PINNED) set missing
  ((with_optional)) && sets+=(OPTIONAL)
  for set in "${sets[@]}"; do
    mapfile -t missing < <(missing_packages "$set")
    if ((${#missing[@]})); then
      install_packages "${missing[@]}"
    fi
    check_versions "$set"
  done
  check_executables
  check_python
  ((with_optional)) && configure_podman
  echo "bootstrap: ok (bazel $(installed_version bazel-bootstrap), rustc $(installed_version rustc), lld $(installed_version lld-14), protoc $(installed_version protobuf-compiler), python $PYTHON_VERSION) in ${SECONDS} s"
}

main "$@"
