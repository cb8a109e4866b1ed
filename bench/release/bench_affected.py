"""Benchmark: `release affected` on synthetic repositories of 1,000 and 10,000 targets.

Each repository is a git history of genrules in packages of 100: chains (each
even target depends on the one before it) and fan-outs (every target ending in
5 depends on a hub in the first package). The head commit changes the hub's
source file and one BUILD attribute. Timed end to end through the CLI:

  cold    no per-revision cache and a freshly started Bazel server
  cached  the same query again (both revisions' hashes from the cache)

Anchors, measured in the same run: `bazel query` alone on the head revision
(warm server; the tool's own overhead is the rest) and `git diff --name-only`
(what a path-based guess costs). Targets: 10,000 targets < 60 s cold, < 2 s cached.

    python3 bench/release/bench_affected.py [--sizes 1000 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
RELEASE = ROOT / "tools" / "release" / "release.py"
PACKAGE_SIZE = 100
TARGETS = {"cold_seconds": 60.0, "cached_seconds": 2.0}


def git(repo: pathlib.Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _package_build(index: int, attribute_variant: str = "") -> str:
    rules = []
    for i in range(PACKAGE_SIZE):
        srcs = [f'"s{i}.txt"']
        if i % 2 == 0 and i > 0:
            srcs.append(f'":t{i - 1}"')
        if i % 10 == 5:
            srcs.append('"//p0000:t0"')
        cmd = "cat $(SRCS) > $@" + (attribute_variant if i == 50 else "")
        rules.append(f'genrule(name = "t{i}", srcs = [{", ".join(srcs)}], outs = ["t{i}.out"], cmd = "{cmd}", '
                     'visibility = ["//visibility:public"])')
    return "\n".join(rules) + "\n"


def generate(repo: pathlib.Path, targets: int) -> tuple[str, str]:
    """Writes the repository; returns (base, head) commits."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "WORKSPACE").write_text('workspace(name = "synthetic")\n')
    for p in range(targets // PACKAGE_SIZE):
        package = repo / f"p{p:04d}"
        package.mkdir()
        (package / "BUILD").write_text(_package_build(p))
        for i in range(PACKAGE_SIZE):
            (package / f"s{i}.txt").write_text(f"{p} {i}\n")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    (repo / "p0000" / "s0.txt").write_text("hub changed\n")
    last = repo / f"p{targets // PACKAGE_SIZE - 1:04d}"
    (last / "BUILD").write_text(_package_build(0, attribute_variant=" && true"))
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "commit", "-q", "-m", "head")
    return base, git(repo, "rev-parse", "HEAD").strip()


def timed(argv: list[str], cwd: pathlib.Path) -> tuple[float, str]:
    started = time.monotonic()
    result = subprocess.run(argv, cwd=cwd, capture_output=True)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])}... failed: {result.stderr.decode(errors='replace')[-800:]}")
    return elapsed, result.stdout.decode(errors="replace")


def bench_size(scratch: pathlib.Path, targets: int) -> dict[str, object]:
    repo = scratch / f"repo{targets}"
    base, head = generate(repo, targets)
    cache = scratch / f"cache{targets}"
    user_root = scratch / "bazel"
    command = [sys.executable, str(RELEASE), "affected", "--repo", str(repo), "--base", base, "--head", head,
               "--cache-dir", str(cache), "--bazel-output-user-root", str(user_root),
               "--keep-bazel-server"]  # the warm-query anchor below reuses it; shut down at the end
    cold, out = timed(command, repo)
    document = json.loads(out)
    cached, out_cached = timed(command, repo)
    assert json.loads(out_cached)["affected"] == document["affected"], "the cache changed the answer"
    checkout = next((cache / "checkouts").glob("*/src"))
    query, _ = timed(["bazel", f"--output_user_root={user_root}", "query", "--output=streamed_proto",
                      "//...:* + //external:*"], checkout)
    diff, _ = timed(["git", "diff", "--name-only", base, head], repo)
    subprocess.run(["bazel", f"--output_user_root={user_root}", "shutdown"], cwd=checkout, capture_output=True)
    return {"targets": targets, "rules": targets, "affected": document["count"],
            "cold_seconds": round(cold, 3), "cached_seconds": round(cached, 3),
            "anchor_bazel_query_warm_seconds": round(query, 3), "anchor_git_diff_seconds": round(diff, 3),
            "cold_over_query": {"value": round(cold / query, 2), "same_work": False,
                                "differs": ["`bazel query` lists the head revision's targets once; `release affected` "
                                            "also checks out and queries both revisions, hashes and compares them"]},
            "cold_over_cached": {"value": round(cold / cached, 1), "same_work": True},  # same command, same answer
            "meets_targets": cold < TARGETS["cold_seconds"] and cached < TARGETS["cached_seconds"]}


def write_document(name: str, targets: dict[str, float], results: list[dict[str, object]],
                   load_before: tuple[float, float, float], out: str) -> dict[str, object]:
    """Writes a results document (machine, versions, load before and after) to `out`; returns it."""
    bazel = subprocess.run(["bazel", "--version"], capture_output=True, text=True).stdout.strip()
    document = {
        "benchmark": name,
        "machine": {"system": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "versions": {"bazel": bazel, "git": git(ROOT, "--version").strip()},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "targets": targets,
        "results": results,
    }
    pathlib.Path(out).write_text(json.dumps(document, indent=2) + "\n")
    return document


def shown(value: object) -> object:
    """A ratio's value (ratios are {"value", "same_work", ...}); any other field as it is."""
    return value["value"] if isinstance(value, dict) and "same_work" in value else value


def print_table(columns: list[tuple[str, str]], document: dict[str, object], out: str) -> None:
    """One row per result: (title, key) columns, right-aligned; then the load and where it was written."""
    widths = [max(len(title), 8) for title, _ in columns]
    print(" ".join(f"{title:>{w}}" for (title, _), w in zip(columns, widths)))
    for result in document["results"]:
        print(" ".join(f"{str(shown(result[key])):>{w}}" for (_, key), w in zip(columns, widths)))
    print(f"load average {document['load_average_before']} -> {document['load_average_after']}; wrote {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "release_affected.json"))
    args = parser.parse_args()
    load_before = os.getloadavg()
    scratch = pathlib.Path(tempfile.mkdtemp(prefix="release-bench-"))
    try:
        results = [bench_size(scratch, size) for size in args.sizes]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    document = write_document("release_affected", TARGETS, results, load_before, args.out)
    print_table([("targets", "targets"), ("affected", "affected"), ("cold s", "cold_seconds"),
                 ("cached s", "cached_seconds"), ("query s", "anchor_bazel_query_warm_seconds"),
                 ("cold/query", "cold_over_query"), ("ok", "meets_targets")], document, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
