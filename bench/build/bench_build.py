"""Build benchmarks (design.md §5): the metrics aspect + profile overhead, and a cold
build against a fully cached one. Results go to bench/results/*.json with the machine.

    python3 bench/build/bench_build.py aspect-overhead [--runs 3] [--command build]
    python3 bench/build/bench_build.py cold-vs-cached [--runs 2]
    python3 bench/build/bench_build.py remote [--command test] [--targets //...]

Each benchmark works in its own clone of the repository (with the caller's uncommitted
files) and its own output base, so it neither disturbs nor is disturbed by other Bazel
servers and edits; both are removed at the end.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
BAZEL = os.environ.get("BAZEL", "bazel")
METRICS_FLAGS = [
    "--noslim_profile",
    "--experimental_profile_include_target_label",
    "--experimental_profile_include_primary_output",
    "--aspects=//tools/metrics:defs.bzl%metrics_aspect",
    "--output_groups=+metrics",
]
# --disk_cache= : a disk cache from a user's rc file would turn a cold build into cache hits.
COMMON = ["--symlink_prefix=/", "--keep_going", "--disk_cache="]


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    version = subprocess.run([BAZEL, "--version"], capture_output=True, text=True).stdout.strip()
    package = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "bazel-bootstrap"],
                             capture_output=True, text=True).stdout.strip()
    if package:
        version = f"bazel-bootstrap {package}"
    return {"nproc": os.cpu_count(), "cpu_model": model, "mem_gib": round(mem_kb / 2**20, 1),
            "os": f"{platform.system()} {platform.release()}", "bazel": version}


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()


def checkout(dest: Path) -> None:
    """A clone plus the caller's uncommitted and untracked (not ignored) files."""
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(dest)], check=True)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        src = REPO / os.fsdecode(raw)
        if src.is_file() or src.is_symlink():
            target = dest / os.fsdecode(raw)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target, follow_symlinks=False)


class Bazel:
    def __init__(self, workspace: Path, output_base: Path) -> None:
        self.workspace = workspace
        self.startup = [f"--output_base={output_base}"]

    def run(self, *args: str, check: bool = False) -> tuple[float, int, str]:
        elapsed, returncode, log = self.run_log(*args, check=check)
        summary = next((line for line in reversed(log.splitlines()) if " process" in line and "INFO:" in line), "")
        return elapsed, returncode, summary

    def run_log(self, *args: str, check: bool = False) -> tuple[float, int, str]:
        """Wall seconds, exit status and Bazel's whole output (the test summary is on stdout)."""
        start = time.monotonic()
        proc = subprocess.run([BAZEL, *self.startup, *args], cwd=self.workspace, capture_output=True, text=True)
        elapsed = time.monotonic() - start
        if check and proc.returncode != 0:
            sys.stderr.write(proc.stderr[-4000:])
            raise SystemExit(f"bazel {' '.join(args[:2])} failed ({proc.returncode})")
        return elapsed, proc.returncode, proc.stderr + proc.stdout

    def shutdown(self) -> None:
        subprocess.run([BAZEL, *self.startup, "shutdown"], cwd=self.workspace, capture_output=True)


def write(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def _summary(values: list[float]) -> dict[str, float]:
    return {"median_s": round(statistics.median(values), 3), "min_s": round(min(values), 3),
            "max_s": round(max(values), 3), "runs_s": [round(v, 3) for v in values]}


def aspect_overhead(args: argparse.Namespace, bazel: Bazel, tmp: Path) -> dict[str, Any]:
    """Clean build of the targets, alternating without and with the aspect + profile flags."""
    bazel.run("build", *COMMON, "--nobuild", *args.targets, check=False)  # fetch + load once
    plain: list[float] = []
    metrics: list[float] = []
    summaries: dict[str, str] = {}
    for i in range(args.runs):
        for label, extra in (("plain", []), ("metrics", METRICS_FLAGS + [f"--profile={tmp}/profile{i}.json"])):
            bazel.run("clean")
            elapsed, rc, summary = bazel.run(args.command, *COMMON, *extra, "--", *args.targets)
            (plain if label == "plain" else metrics).append(elapsed)
            summaries[label] = summary
            print(f"  run {i + 1} {label}: {elapsed:.1f} s (exit {rc}) {summary}", flush=True)
    return {
        "what": f"clean `bazel {args.command}` of {' '.join(args.targets)}, without vs with the metrics "
                "aspect (--output_groups=+metrics) and the JSON profile with target labels",
        "plain": _summary(plain),
        "with_aspect_and_profile": _summary(metrics),
        "ratio_median": {
            "value": round(statistics.median(metrics) / statistics.median(plain), 3),
            "same_work": False,
            "differs": ["the metrics build also runs the aspect's MeasureOutputs spawn per target and writes the "
                        "JSON profile: the overhead this ratio measures"],
        },
        "process_summary": summaries,
    }


def cold_vs_cached(args: argparse.Namespace, bazel: Bazel, tmp: Path) -> dict[str, Any]:
    """Cold (clean, no cache) vs no-op (nothing changed) vs a fresh output base fully served
    by the remote cache. Both timed builds of the same work start analysed (an untimed
    --nobuild), and the cache is filled by an untimed build of its own, so the cold side
    neither analyses nor uploads inside its timing."""
    env_cache = {**os.environ, "REMOTE_CACHE_DIR": str(tmp / "cache")}
    cold: list[float] = []
    noop: list[float] = []
    remote: list[float] = []
    summaries: dict[str, str] = {}
    subprocess.run([str(REPO / "ci" / "remote_cache.sh"), "start"], env=env_cache, check=True)
    try:
        bazel.run("build", *COMMON, "--config=remote-cache", "--", *args.targets)  # fills the cache, not timed
        for i in range(args.runs):
            bazel.run("clean")
            bazel.run("build", *COMMON, "--nobuild", *args.targets)  # loading + analysis, not timed
            elapsed, rc, summaries["cold"] = bazel.run("build", *COMMON, "--", *args.targets)
            cold.append(elapsed)
            print(f"  run {i + 1} cold: {elapsed:.1f} s (exit {rc}) {summaries['cold']}", flush=True)
            elapsed, rc, summaries["noop"] = bazel.run("build", *COMMON, "--", *args.targets)
            noop.append(elapsed)
            print(f"  run {i + 1} no-op: {elapsed:.1f} s (exit {rc}) {summaries['noop']}", flush=True)
            fresh = Bazel(bazel.workspace, tmp / f"ob_remote{i}")
            fresh.run("build", *COMMON, "--nobuild", *args.targets)  # repositories + loading, not timed
            elapsed, rc, summaries["remote"] = fresh.run("build", *COMMON, "--config=remote-cache", "--", *args.targets)
            remote.append(elapsed)
            print(f"  run {i + 1} fresh output base, remote cache: {elapsed:.1f} s (exit {rc}) {summaries['remote']}",
                  flush=True)
            fresh.shutdown()
            shutil.rmtree(tmp / f"ob_remote{i}", ignore_errors=True)
    finally:
        subprocess.run([str(REPO / "ci" / "remote_cache.sh"), "stop"], env=env_cache)
    return {
        "what": f"`bazel build {' '.join(args.targets)}`: cold (after clean, no cache) vs no-op (again, nothing "
                "changed) vs a fresh output base served by the remote cache (filled by an earlier, untimed build); "
                "the cold and the cached builds are both loaded and analysed before timing",
        "cold": _summary(cold),
        "noop": _summary(noop),
        "remote_cache_fresh_output_base": _summary(remote),
        "ratio_cold_over_remote_cached": {
            "value": round(statistics.median(cold) / statistics.median(remote), 3),
            "same_work": True,
        },
        "ratio_cold_over_noop": {
            "value": round(statistics.median(cold) / statistics.median(noop), 3),
            "same_work": False,
            "differs": ["the no-op build finds every output up to date and runs no action: the ratio measures "
                        "incrementality"],
        },
        "process_summary": summaries,
    }


def processes(log: str) -> dict[str, int]:
    """Bazel's last "INFO: N processes: A internal, B remote, ..." line as counts by kind."""
    line = next((l for l in reversed(log.splitlines()) if re.match(r"^INFO: \d+ process", l)), "")
    counts = {"total": int(re.match(r"^INFO: (\d+)", line).group(1)) if line else 0}
    for number, kind in re.findall(r"(\d+) ([a-z][a-z -]*?)(?=[,.]|$)", line.split(":", 2)[-1] if line else ""):
        counts[kind.strip().replace(" ", "_").replace("-", "_")] = int(number)
    return counts


def remote(args: argparse.Namespace, bazel: Bazel, tmp: Path) -> dict[str, Any]:
    """Local cold vs remote-execution cold (fresh Buildbarn) vs a fresh output base served by
    the action cache that remote run filled; each in its own output base, repositories
    fetched and packages loaded before timing. All three use the system Python
    (--config=system-python), as remote actions must."""
    env_bb = {**os.environ, "BUILDBARN_DATA": str(tmp / "buildbarn")}
    os.chmod(tmp, 0o755)  # Buildbarn's unprivileged runner works below it
    scenarios = {
        "local_cold": ["--config=system-python"],
        "remote_execution_cold": ["--config=remote"],
        "remote_cache_warm": ["--config=system-python", "--config=remote-cache"],
    }
    results: dict[str, Any] = {}
    subprocess.run([str(REPO / "ci" / "buildbarn.sh"), "start", "execution"], env=env_bb, check=True)
    try:
        for name, flags in scenarios.items():
            fresh = Bazel(bazel.workspace, tmp / f"ob_{name}")
            fresh.run("build", *COMMON, *flags, "--nobuild", *args.targets)
            elapsed, rc, log = fresh.run_log(args.command, *COMMON, *flags, "--", *args.targets)
            tests = next((l for l in reversed(log.splitlines()) if l.startswith("Executed ")), "")
            results[name] = {"wall_s": round(elapsed, 3), "exit": rc, "flags": flags, "processes": processes(log),
                             "tests": tests}
            print(f"  {name}: {elapsed:.1f} s (exit {rc}) {results[name]['processes']} {tests}", flush=True)
            fresh.shutdown()
        status = subprocess.run([str(REPO / "ci" / "buildbarn.sh"), "status"], env=env_bb, capture_output=True,
                                text=True)
        results["buildbarn_status"] = json.loads(status.stdout)
    finally:
        subprocess.run([str(REPO / "ci" / "buildbarn.sh"), "stop"], env=env_bb)
    anchor = results["local_cold"]["wall_s"]
    print(f"{'scenario':<24} {'wall s':>8} {'x local':>8}  processes")
    for name in scenarios:
        r = results[name]
        print(f"{name:<24} {r['wall_s']:>8.1f} {anchor / r['wall_s']:>8.2f}  {r['processes']}")
    return {
        "what": f"`bazel {args.command} {' '.join(args.targets)}` in fresh output bases: local cold (linux-sandbox) "
                "vs remote execution cold (fresh Buildbarn on loopback, same 2 cores) vs remote-cache warm "
                "(the action cache the remote run filled)",
        **{name: results[name] for name in scenarios},
        # The same command, targets and outputs in each fresh output base, analysed before timing.
        "speedup_over_local_cold": {name: {"value": round(anchor / results[name]["wall_s"], 3), "same_work": True}
                                    for name in scenarios},
        "buildbarn_status": results["buildbarn_status"],
        "buildbarn_versions": buildbarn_versions(),
    }


def buildbarn_versions() -> dict[str, str]:
    """The Buildbarn modules ci/buildbarn/go.mod pins."""
    text = (REPO / "ci" / "buildbarn" / "go.mod").read_text()
    return dict(re.findall(r"^\s*(github\.com/buildbarn/\S+) (v\S+)$", text, re.M))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("benchmark", choices=["aspect-overhead", "cold-vs-cached", "remote"])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--command", choices=["build", "test"], default="build")
    p.add_argument("--targets", nargs="+", default=["//..."])
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="chimera-bench."))
    workspace = tmp / "chimera"
    bazel = Bazel(workspace, tmp / "output_base")
    load_before = loadavg()
    try:
        checkout(workspace)
        run = {"aspect-overhead": aspect_overhead, "cold-vs-cached": cold_vs_cached, "remote": remote}[args.benchmark]
        result = run(args, bazel, tmp)
        result["loadavg_1min"] = {"before": load_before, "after": loadavg(),
                                  "note": "other work on the machine (e.g. other Bazel servers) adds noise"}
    finally:
        bazel.shutdown()
        subprocess.run(["chmod", "-R", "u+w", str(tmp)], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    write(f"build_{args.benchmark.replace('-', '_')}", {
        "benchmark": args.benchmark,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "runs": args.runs,
        "machine": machine(),
        "command": " ".join(sys.argv),
        **result,
    })


if __name__ == "__main__":
    main()
