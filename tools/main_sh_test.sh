#!/usr/bin/env bash
# tools/main.sh --help (anywhere among the arguments) prints the usage and exits 0
# before anything runs: no set-up, and no Bazel (a fake $BAZEL records any call).
set -euo pipefail
main_sh="$(realpath "$1")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cat >"$work/bazel" <<FAKE
#!/usr/bin/env bash
echo "\$*" >>"$work/bazel_calls"
exit 2
FAKE
chmod +x "$work/bazel"

for args in "--help" "-h" "--config=remote-cache --help"; do
  status=0
  # shellcheck disable=SC2086  # the words of $args are the arguments
  BAZEL="$work/bazel" "$main_sh" $args >"$work/out" 2>"$work/err" || status=$?
  if ((status != 0)); then
    echo "FAIL: main.sh $args: exit status $status; stderr: $(cat "$work/err")"
    exit 1
  fi
  for line in "tools/main.sh [bazel flags...]" "tools/main.sh --help" "build_metrics.failed.json"; do
    grep -qF -- "$line" "$work/out" || { echo "FAIL: main.sh $args: usage lacks '$line':"; cat "$work/out"; exit 1; }
  done
  if grep -q '^#' "$work/out" || grep -q 'set -euo' "$work/out"; then
    echo "FAIL: main.sh $args: usage shows the script's source:"; cat "$work/out"; exit 1
  fi
  if [[ -s "$work/err" || -e "$work/bazel_calls" ]]; then
    echo "FAIL: main.sh $args ran something: stderr '$(cat "$work/err")', bazel calls: $(cat "$work/bazel_calls" 2>/dev/null)"
    exit 1
  fi
  echo "ok: main.sh $args printed its usage ($(wc -l <"$work/out") lines), ran nothing"
done
