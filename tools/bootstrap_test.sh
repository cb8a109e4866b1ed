#!/usr/bin/env bash
# Checks that tools/bootstrap.sh stops with one clear message (exit 2) on a
# missing package, a wrong pinned version, a tool whose link dangles (rust-lld
# without lld-14), or a wrong Python, and passes on a machine that has
# everything. dpkg-query and python are replaced by fakes on PATH, the tools by
# a fake root (CHIMERA_BOOTSTRAP_ROOT); --check keeps it from installing.
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
  lld-14|libclang-rt-14-dev|llvm-14) echo "ii  1:14.0.6-12" ;;
  postgresql) echo "ii  15+248" ;;
  prometheus) echo "ii  2.42.0+ds-5+b5" ;;
  podman) echo "ii  4.3.1+ds1-8+deb12u1" ;;
  python3.11|python3.11-venv) echo "ii  3.11.2-6" ;;
  *) echo "ii  1.0" ;;
esac
FAKE
# A Python 3.11 first on PATH that is not Debian's: bootstrap must not take it.
cat >"$fakes/python3.11" <<'FAKE'
#!/usr/bin/env bash
exec "$REAL_PYTHON" -c 'raise SystemExit(1)'
FAKE
cat >"$fakes/python3.10" <<'FAKE'
#!/usr/bin/env bash
exec "$REAL_PYTHON" -c 'raise SystemExit(1)'
FAKE
cat >"$fakes/python3.9" <<'FAKE'
#!/usr/bin/env bash
# A Python 3.11 with pip but without ensurepip (python3.11-venv missing).
exec "$REAL_PYTHON" -c 'import sys; sys.exit(1 if "ensurepip" in sys.argv[-1] else 0)' "$@"
FAKE
chmod +x "$fakes"/*

# Fake root: every executable the build calls, as Debian lays them out (links
# included), resolving to a real executable; rust-lld's target is removed below.
root="$fakes/root"
mkdir -p "$root/usr/bin" "$root/usr/lib/llvm-14/bin"
for tool in bazel clippy-driver git protoc rustc rustfmt x86_64-linux-gnu-gcc-12 x86_64-linux-gnu-ld.bfd; do
  printf '#!/bin/sh\n' >"$root/usr/bin/$tool"
  chmod +x "$root/usr/bin/$tool"
done
cp "$root/usr/bin/rustc" "$root/usr/lib/llvm-14/bin/lld"
ln -s x86_64-linux-gnu-gcc-12 "$root/usr/bin/cc"
ln -s x86_64-linux-gnu-ld.bfd "$root/usr/bin/ld"
ln -s ../lib/llvm-14/bin/lld "$root/usr/bin/rust-lld"
printf '#!/usr/bin/env bash\nexec "$REAL_PYTHON" "$@"\n' >"$root/usr/bin/python3.11"
chmod +x "$root/usr/bin/python3.11"
# podman's settings (--optional): as bootstrap.sh writes them.
mkdir -p "$root/etc/containers"
printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' >"$root/etc/containers/containers.conf"
export CHIMERA_BOOTSTRAP_ROOT="$root"
export REAL_PYTHON="$pinned_python"
export PATH="$fakes:$PATH"
unset CHIMERA_PYTHON

failures=0
expect() {
  local want_status="$1" want_text="$2" output status=0
  shift 2
  output="$(env "$@" bash "$bootstrap" --check ${BOOTSTRAP_FLAGS:-} 2>&1)" || status=$?
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
expect 2 "missing Debian packages: lld-14" FAKE_VERSIONS="lld-14="
expect 2 "is not a Python 3.11 with pip" FAKE_VERSIONS= CHIMERA_PYTHON="$fakes/python3.10"
expect 2 "cannot create virtual environments (no ensurepip)" FAKE_VERSIONS= CHIMERA_PYTHON="$fakes/python3.9"
expect 2 "fix: apt-get install python3.11-venv" FAKE_VERSIONS= CHIMERA_PYTHON="$fakes/python3.9"
mv "$root/usr/bin/python3.11" "$fakes/debian_python3.11"
expect 2 "/usr/bin/python3.11 is missing" FAKE_VERSIONS=  # the python3.11 on PATH does not stand in
expect 0 "bootstrap: ok" FAKE_VERSIONS= CHIMERA_PYTHON="$fakes/debian_python3.11"
mv "$fakes/debian_python3.11" "$root/usr/bin/python3.11"
# --optional adds the opt-in checks' packages, Rust coverage's among them (LLVM 14.0.6 exactly).
BOOTSTRAP_FLAGS=--optional expect 0 "bootstrap: ok" FAKE_VERSIONS=
BOOTSTRAP_FLAGS=--optional expect 2 "missing Debian packages: libclang-rt-14-dev" FAKE_VERSIONS="libclang-rt-14-dev="
BOOTSTRAP_FLAGS=--optional expect 2 "llvm-14 is 1:15.0.6-4, Chimera pins 1:14.0.6" FAKE_VERSIONS="llvm-14=1:15.0.6-4"
expect 0 "bootstrap: ok" FAKE_VERSIONS="libclang-rt-14-dev= llvm-14="
BOOTSTRAP_FLAGS=--optional expect 2 "missing Debian packages: podman" FAKE_VERSIONS="podman="
sed -i 's/runtime = "runc"/runtime = "crun"/' "$root/etc/containers/containers.conf"
BOOTSTRAP_FLAGS=--optional expect 2 'containers.conf lacks: runtime = "runc"' FAKE_VERSIONS=
expect 0 "bootstrap: ok" FAKE_VERSIONS=  # without --optional podman's settings are not checked
rm "$root/usr/bin/protoc"
expect 2 "/usr/bin/protoc is missing" FAKE_VERSIONS=
printf '#!/bin/sh\n' >"$root/usr/bin/protoc"
chmod +x "$root/usr/bin/protoc"
rm "$root/usr/lib/llvm-14/bin/lld"
expect 2 "/usr/bin/rust-lld is a link to /usr/lib/llvm-14/bin/lld, which does not exist" FAKE_VERSIONS=
expect 2 "fix: apt-get install lld-14" FAKE_VERSIONS=
status=0
output="$(bash "$bootstrap" --bogus 2>&1)" || status=$?
if [[ "$status" == 2 ]] && grep -qF "unknown argument: --bogus" <<<"$output"; then
  echo "ok: --bogus -> unknown argument"
else
  echo "FAIL: --bogus -> exit $status: $output"
  failures=$((failures + 1))
fi
[[ "$failures" == 0 ]]
