#!/usr/bin/env bash
# Builds Buildbarn's bb_storage, bb_scheduler, bb_worker and bb_runner once, with
# plain `go build` through the wrapper module next to this script, and prints the
# directory holding them.
#
#   ci/buildbarn/build.sh            # -> ~/.cache/chimera-buildbarn/<key>/bin
#
# The build directory is keyed by a hash of go.mod, go.sum, this script and the Go
# version, so a rerun is instant and a version bump rebuilds.
#
# Upstream builds with Bazel and patches four Go dependencies there; the .diff
# files ship inside the bb-storage and bb-remote-execution modules (patches/).
# Plain `go build` fails without them (`fuse.ReadDirEntryList` undefined, a
# `RegisterByteStreamServer` type error), so this script copies each of those
# dependencies out of the module cache, applies upstream's diffs to the copy and
# points the build at it with a `replace` directive (in a scratch copy of the
# wrapper module; the committed go.mod stays as it is).
#
# On failure it prints one line naming the step that blocked it (the full log
# stays in the build directory) and exits 1.
#
# Environment: BUILDBARN_HOME (default ~/.cache/chimera-buildbarn).
set -euo pipefail

module_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
home="${BUILDBARN_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/chimera-buildbarn}"
programs=(bb_storage bb_scheduler bb_worker bb_runner)

# "<dependency module> <module shipping the patch> <patch path in it>", in the
# order upstream's MODULE.bazel applies them.
patches=(
  "google.golang.org/genproto/googleapis/bytestream github.com/buildbarn/bb-storage patches/org_golang_google_genproto_googleapis_bytestream/service-registrar.diff"
  "golang.org/x/oauth2 github.com/buildbarn/bb-storage patches/org_golang_x_oauth2/injectable-clock.diff"
  "github.com/grpc-ecosystem/go-grpc-prometheus github.com/buildbarn/bb-storage patches/com_github_grpc_ecosystem_go_grpc_prometheus/client-metrics-prevent-handled-twice.diff"
  "github.com/hanwen/go-fuse/v2 github.com/buildbarn/bb-remote-execution patches/com_github_hanwen_go_fuse_v2/direntrylist-offsets-and-testability.diff"
  "github.com/hanwen/go-fuse/v2 github.com/buildbarn/bb-remote-execution patches/com_github_hanwen_go_fuse_v2/writeback-cache.diff"
  "github.com/hanwen/go-fuse/v2 github.com/buildbarn/bb-remote-execution patches/com_github_hanwen_go_fuse_v2/notify-testability.diff"
)

fail() { echo "buildbarn build: $*" >&2; exit 1; }

command -v go >/dev/null || fail "no Go toolchain on PATH (install Go >= 1.23)"
command -v patch >/dev/null || fail "no 'patch' program on PATH (apt-get install patch)"

go_version="$(go env GOVERSION)"
key="$(cat "$module_dir/go.mod" "$module_dir/go.sum" "${BASH_SOURCE[0]}" <(echo "$go_version") \
  | sha256sum | cut -c1-16)"
out="$home/$key"
bin="$out/bin"

built() {
  local program
  for program in "${programs[@]}"; do [[ -x "$bin/$program" ]] || return 1; done
}
if built; then
  echo "$bin"
  exit 0
fi

mkdir -p "$out"
work="$(mktemp -d "$out/work.XXXXXX")"
log="$out/build.log"
: >"$log"
trap 'rm -rf "$work"' EXIT

# Runs one step, logging its output; on failure names the step and the last
# line of its output.
step() {
  local what="$1"
  shift
  echo "== $what: $*" >>"$log"
  if ! "$@" >>"$log" 2>&1; then
    fail "$what failed: $(grep -v '^\s*$' "$log" | tail -1) (log: $log)"
  fi
}

export GONOSUMDB="github.com/buildbarn" GOFLAGS="-buildvcs=false -mod=mod"
cp "$module_dir/go.mod" "$module_dir/go.sum" "$module_dir/tools.go" "$work/"
cd "$work"

# Directory of a module (at the version the wrapper module resolves) in the
# module cache, downloading it if needed.
module_source() {
  local version
  version="$(go list -m -f '{{.Version}}' "$1")" || return 1
  go mod download -json "$1@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}

echo "buildbarn build: go $go_version, downloading modules (go.sum pinned)" >&2
step "download modules" go mod download
declare -A copied=()
for entry in "${patches[@]}"; do
  read -r dependency shipper patch_path <<<"$entry"
  if [[ -z "${copied[$dependency]:-}" ]]; then
    source_dir="$(module_source "$dependency")" || fail "module $dependency is not in the module graph"
    [[ -d "$source_dir" ]] || fail "module $dependency could not be downloaded"
    local_copy="$work/patched/${dependency//\//_}"
    mkdir -p "$local_copy"
    cp -r "$source_dir/." "$local_copy/"
    chmod -R u+w "$local_copy"
    # Modules predating go.mod need one to serve as a replacement.
    [[ -f "$local_copy/go.mod" ]] || echo "module $dependency" >"$local_copy/go.mod"
    step "replace $dependency" go mod edit -replace "$dependency=$local_copy"
    copied[$dependency]="$local_copy"
  fi
  shipper_dir="$(module_source "$shipper")" || fail "module $shipper is not in the module graph"
  [[ -f "$shipper_dir/$patch_path" ]] || fail "$shipper no longer ships $patch_path"
  step "patch $dependency with $patch_path" patch -p0 --forward --batch -d "${copied[$dependency]}" -i "$shipper_dir/$patch_path"
done

echo "buildbarn build: go build ${programs[*]} (a cold build takes a few minutes)" >&2
mkdir -p "$work/bin"
step "go build" go build -trimpath -o "$work/bin/" \
  github.com/buildbarn/bb-storage/cmd/bb_storage \
  github.com/buildbarn/bb-remote-execution/cmd/bb_scheduler \
  github.com/buildbarn/bb-remote-execution/cmd/bb_worker \
  github.com/buildbarn/bb-remote-execution/cmd/bb_runner
rm -rf "$bin"
mv "$work/bin" "$bin"
echo "$bin"
