"""Benchmark: `release affected` on this repository's own history (issue 22's targets).

For each of the last N commits (base = its parent), timed end to end through the CLI:

  cold    an empty per-revision cache and no Bazel server (the command starts one and,
          as by default, shuts it down again)
  cached  the same query again (both snapshots from the cache; Bazel is not started)

Anchor, same run: `git diff --name-only` between the two commits (what a path-based guess
costs). Targets: cold <= 10 s, cached <= 0.5 s with no flag change.

    python3 bench/release/bench_affected_repo.py [--commits 3]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from bench_affected import print_table, write_document  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
RELEASE = ROOT / "tools" / "release" / "release.py"
TARGETS = {"cold_seconds": 10.0, "cached_seconds": 0.5}


def timed(argv: list[str]) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])}... failed: {result.stderr[-800:]}")
    return elapsed, result.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "release_affected_repo.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="raff-", dir="/tmp"))
    commits = subprocess.run(["git", "rev-list", f"--max-count={args.commits}", "--no-merges", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    results = []
    try:
        for index, head in enumerate(commits):
            cache = scratch / f"cache{index}"
            command = [sys.executable, str(RELEASE), "affected", "--repo", str(ROOT), "--base", f"{head}^",
                       "--head", head, "--cache-dir", str(cache), "--bazel-output-user-root", str(scratch / "bz")]
            cold, out = timed(command)
            document = json.loads(out)
            cached, out_cached = timed(command)
            assert json.loads(out_cached)["affected"] == document["affected"], "the cache changed the answer"
            diff, names = timed(["git", "diff", "--name-only", f"{head}^", head])
            results.append({"head": head[:12], "changed_files": len(names.split()), "affected": document["count"],
                            "changed_flags": document["timing"]["changed_flags"],
                            "cold_seconds": round(cold, 3), "cached_seconds": round(cached, 3),
                            "anchor_git_diff_seconds": round(diff, 3), "cold_over_git_diff": {
                                "value": round(cold / diff, 1), "same_work": False,
                                "differs": ["`git diff` lists the changed files; `release affected` maps them to "
                                            "targets through both revisions' build graphs"]},
                            "meets_targets": cold <= TARGETS["cold_seconds"] and cached <= TARGETS["cached_seconds"]})
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    document = write_document("release_affected_repo", TARGETS, results, load_before, args.out)
    print_table([("head", "head"), ("files", "changed_files"), ("affected", "affected"), ("cold s", "cold_seconds"),
                 ("cached s", "cached_seconds"), ("ok", "meets_targets")], document, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
