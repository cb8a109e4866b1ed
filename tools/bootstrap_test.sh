#!/usr/bin/env bash
# Checks that tools/bootstrap.sh stops with one clear message (exit 2) on a
# missing package, a wrong pinned version, or a wrong Python, and passes on a
# machine that has everything. dpkg-query and python are replaced by fakes on
# PATH; --check keeps the script from installing anything.
set -euo pipefail
bootstrap="$1"
pinned_python="$(realpath "$2")"
fakes="$(mktemp -d)"
trap 'rm -rf "$fakes"' EXIT

# Fake dpkg-query: every package installed at its pinned version, except the
# overrides in $FAKE_VERSIONS ("pkg=version" words; an empty version = absent).
cat >"$fakes/dpkg-query" <<'FAKE'
#!/usr/bin/env bash
package="${*: -1}"
for override in $FAKE_VERSIONS; do
  if [[ "${override%%=*}" == "$package" ]]; then
    version="${override#*=}"
    [[ -n "$version" ]] && echo "ii  $version"
    exit 0
  fi
done
case "$package" in
  bazel-bootstrap) echo "ii  4.2.3+ds-9" ;;
  libprotobuf-dev|protobuf-compiler) echo "ii  3.21.12-3" ;;
  libstd-rust-dev-wasm32|rust-clippy|rustc|rustfmt) echo "ii  1.63.0+dfsg1-2" ;;
  *) echo "ii  1.0" ;;
esac
FAKE
cat >"$fakes/python3.11" <<'FAKE'
#!/usr/bin/env bash
exec "$REAL_PYTHON" "$@"
FAKE
cat >"$fakes/python3.10" <<'FAKE'
#!/usr/bin/env bash
exec "$REAL_PYTHON" -c 'raise SystemExit(1)'
FAKE
chmod +x "$fakes"/*
export REAL_PYTHON="$pinned_python"
export PATH="$fakes:$PATH"
unset CHIMERA_PYTHON

failures=0
expect() {
  local want_status="$1" want_text="$2" output status=0
  shift 2
  output="$(env "$@" bash "$bootstrap" --check 2>&1)" || status=$?
  if [[ "$status" != "$want_status" ]] || ! grep -qF -- "$want_text" <<<"$output"; then
    echo "FAIL: $* -> exit $status, wanted $want_status and '$want_text'; got:"
    echo "$output"
    failures=$((failures + 1))
  else
    echo "ok: $* -> $want_text"
  fi
}

expect 0 "bootstrap: ok" FAKE_VERSIONS=
expect 2 "missing Debian packages: rustc" FAKE_VERSIONS="rustc="
expect 2 "rust-clippy rustfmt" FAKE_VERSIONS="rustfmt= rust-clippy="
expect 2 "rustc is 1.70.0-1, Chimera pins 1.63.0" FAKE_VERSIONS="rustc=1.70.0-1"
expect 2 "bazel-bootstrap is 6.0.0, Chimera pins 4.2.3" FAKE_VERSIONS="bazel-bootstrap=6.0.0"
expect 2 "is not a Python 3.11 with pip" FAKE_VERSIONS= CHIMERA_PYTHON="$fakes/python3.10"
status=0
output="$(bash "$bootstrap" --bogus 2>&1)" || status=$?
if [[ "$status" == 2 ]] && grep -qF "unknown argument: --bogus" <<<"$output"; then
  echo "ok: --bogus -> unknown argument"
else
  echo "FAIL: --bogus -> exit $status: $output"
  failures=$((failures + 1))
fi
[[ "$failures" == 0 ]]
