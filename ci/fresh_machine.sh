#!/usr/bin/env bash
# The README's two commands on a fresh machine: a clean Debian bookworm root
# (debootstrap), a clean clone of this tree's HEAD copied in, and inside it, with
# nothing installed but the base system, exactly
#
#     tools/test.sh      (all tests; does its own set-up)
#     tools/main.sh      (the main job)
#
# run as root in a systemd-nspawn container (a plain chroot cannot create the
# namespaces linux-sandbox needs; the sandbox stays on). The tests that skip
# there (no optional package) must be exactly ci/fresh_machine_skips.txt
# (ci/skips.py --expected). Fails with the last
# lines of the command that failed; always removes the root, also on Ctrl-C.
#
# Usage: ci/fresh_machine.sh [--keep-root]
#
# The debootstrapped base root is cached as a tarball under
# ~/.cache/chimera/fresh-root/, keyed by suite and date, so a rerun on the same
# day starts in seconds. Drop the cache: rm -rf ~/.cache/chimera/fresh-root
# Needs root and Debian's debootstrap and systemd-container
# (tools/bootstrap.sh --optional installs them).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
suite=bookworm
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/chimera/fresh-root"
keep_root=0

die() {
  echo "fresh_machine: $1" >&2
  exit 2
}

case "${1:-}" in
  "") ;;
  --keep-root) keep_root=1 ;;
  *) die "unknown argument: $1 (usage: ci/fresh_machine.sh [--keep-root])" ;;
esac
# The commit under test, fixed before anything runs (the checkout may move on).
commit="$(git -C "$repo" rev-parse HEAD)"
[[ "$(id -u)" == 0 ]] || die "needs root (debootstrap and systemd-nspawn); run it with sudo"
for tool in debootstrap systemd-nspawn; do
  command -v "$tool" >/dev/null || die "$tool is missing; run tools/bootstrap.sh --optional"
done

# The machine's own Debian entries (deb822 stanzas whose suites are this
# suite, -updates or -security); third-party repositories never enter the root.
debian_sources() {
  awk -v suite="$suite" '
    BEGIN { RS = ""; ORS = "\n\n" }
    /(^|\n)Types:[^\n]*deb([ \n]|$)/ {
      if (match($0, /(^|\n)Suites:[^\n]*/)) {
        line = substr($0, RSTART, RLENGTH)
        n = split(line, words, /[ \t\n]+/)
        for (i = 1; i <= n; i++)
          if (words[i] == suite || words[i] == suite "-updates" || words[i] == suite "-security") { print; break }
      }
    }' /etc/apt/sources.list.d/*.sources
}
compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null ||
  die "no /etc/apt/sources.list.d/*.sources (deb822) to take the Debian mirror from"
sources="$(debian_sources)"
mirror="$(awk -v suite="$suite" '
  BEGIN { RS = "" }
  { uri = ""; ok = 0
    n = split($0, lines, "\n")
    for (i = 1; i <= n; i++) {
      if (lines[i] ~ /^URIs:/) { split(lines[i], u, /[ \t]+/); uri = u[2] }
      if (lines[i] ~ /^Suites:/) { m = split(lines[i], s, /[ \t]+/); for (j = 2; j <= m; j++) if (s[j] == suite) ok = 1 }
    }
    if (ok && uri != "") { print uri; exit }
  }' <<<"$sources")"
[[ -n "$mirror" ]] || die "no Debian $suite entry in /etc/apt/sources.list.d/*.sources to take the mirror from"

# The root, its toolchains and a cold `bazel test //...` took 10-12 GB at their
# peak (measured in .ci/run with df); 25 GB leaves room for the main job after it.
# A full disk shows up mid-build as an unrelated-looking action failure
# (build-runfiles, a sandbox), so the space is checked here, by name.
min_free_gb="${FRESH_MACHINE_MIN_FREE_GB:-25}"
free_gb="$(df --output=avail -BG /var/tmp | tail -1 | tr -dc 0-9)"
((free_gb >= min_free_gb)) ||
  die "needs ${min_free_gb} GB free under /var/tmp for the root and its cold build; $free_gb GB are free (FRESH_MACHINE_MIN_FREE_GB)"

root="$(mktemp -d /var/tmp/chimera-fresh-root.XXXXXX)"
container_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [[ -n "$container_pid" ]] && kill -0 "$container_pid" 2>/dev/null; then
    kill -TERM "$container_pid" 2>/dev/null || true
    wait "$container_pid" 2>/dev/null || true
  fi
  # systemd-nspawn unmounts what it mounted; anything left (an interrupted
  # run) is unmounted here, lazily, before the root is removed.
  { findmnt -rn -o TARGET | grep -F "$root" || true; } | sort -r |
    while read -r mount; do umount -l "$mount" || true; done
  if ((keep_root)); then
    echo "fresh_machine: root kept at $root"
  else
    rm -rf --one-file-system "$root"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase_start=0
phase() {
  phase_name="$1"
  phase_start=$SECONDS
  echo "=== fresh_machine: $phase_name"
}
phase_done() {
  local seconds=$((SECONDS - phase_start))
  printf 'fresh_machine: %-28s %4d s\n' "$phase_name" "$seconds"
  timings+=("$(printf '%-28s %4d s' "$phase_name" "$seconds")")
}
timings=()

# --- 1. the base root: cached tarball, or debootstrap ---------------------------
tarball="$cache_dir/$suite-minbase-$(date -u +%Y%m%d).tar"
if [[ -s "$tarball" ]]; then
  phase "base root (cache)"
  tar -xpf "$tarball" -C "$root"
else
  phase "base root (debootstrap)"
  mkdir -p "$cache_dir"
  log="$root.debootstrap.log"
  if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$log" 2>&1; then
    tail -20 "$log" >&2
    rm -f "$log"
    die "debootstrap $suite from $mirror failed"
  fi
  rm -f "$log"
  rm -f "$root/etc/apt/sources.list"
  printf '%s\n' "$sources" >"$root/etc/apt/sources.list.d/debian.sources"
  # Older caches of other days are stale: keep only today's.
  find "$cache_dir" -name "$suite-minbase-*.tar" -delete
  tar -cpf "$tarball.partial" -C "$root" . && mv "$tarball.partial" "$tarball"
fi
phase_done

# --- 2. a clean copy of the tree: a clone of HEAD, as a new user makes one ------
# (committed files only: no bazel-* links, no untracked or uncommitted files)
phase "clone the tree"
workdir=/root/chimera
git clone -q --no-hardlinks --no-checkout "$repo" "$root$workdir"
git -C "$root$workdir" checkout -q --detach "$commit"
echo "fresh_machine: commit $commit"
phase_done

# --- 3. the machine's network trust ----------------------------------------------
# Where the network intercepts TLS, the machine trusts local CAs of its own
# (/usr/local/share/ca-certificates); a fresh machine on that network has them
# too. Debian's ca-certificates, which the bootstrap installs, adds them to
# the system store. Nothing else of the host enters the root.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi

# --- 4. inside: the README's commands --------------------------------------------
run_inside() {
  local name="$1" status=0
  local log="$root.${name//[^A-Za-z0-9]/_}.log"
  shift
  phase "$name"
  systemd-nspawn -q --register=no --keep-unit --resolv-conf=copy-host \
    -D "$root" --chdir="$workdir" --setenv=HOME=/root --setenv=CI="${CI:-}" \
    --setenv=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --pipe "$@" >"$log" 2>&1 </dev/null &
  container_pid=$!
  wait "$container_pid" || status=$?
  container_pid=""
  phase_done
  if ((status != 0)); then
    echo "fresh_machine: FAILED: '$*' exited $status inside the fresh root; its last lines:" >&2
    tail -40 "$log" >&2
    echo "fresh_machine: disk at the failure: $(df -h --output=avail,pcent /var/tmp | tail -1) free/used under /var/tmp" >&2
    rm -f "$log"
    exit 1
  fi
  grep -E '^(bootstrap: |Executed [0-9]+ out of|main\.sh: OK)' "$log" || true
  # The set-up's own time, inside the first command (bootstrap prints it).
  local setup
  setup="$(grep -oE '^bootstrap: ok .* in [0-9]+ s$' "$log" | grep -oE '[0-9]+ s$' | head -1 || true)"
  [[ -z "$setup" ]] || timings+=("$(printf '  of which bootstrap         %6s' "$setup")")
  rm -f "$log"
}

run_inside "tools/test.sh" tools/test.sh

# --- 5. the skips: exactly those of ci/fresh_machine_skips.txt ----------------------
# No optional package is installed here and CHIMERA_REQUIRE_OPTIONAL is unset, so
# the tests that need one skip; which ones is a reviewed list, checked both ways.
# bazel-testlogs is an absolute link inside the root.
phase "skips"
testlogs="$(readlink "$root$workdir/bazel-testlogs")" || die "no bazel-testlogs in the fresh root after tools/test.sh"
python3 "$repo/ci/skips.py" --testlogs "$root$testlogs" --expected "$repo/ci/fresh_machine_skips.txt" ||
  { echo "fresh_machine: FAILED: the fresh root's skips are not exactly ci/fresh_machine_skips.txt" >&2; exit 1; }
phase_done

run_inside "tools/main.sh" tools/main.sh

echo "fresh_machine: OK: the README's two commands passed in a fresh Debian $suite root"
printf '  %s\n' "${timings[@]}"
