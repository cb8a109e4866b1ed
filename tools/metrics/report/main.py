"""bazel run //tools/metrics:report -- --profile P --bep B [--aspect-dir D] [--exec-log E] --out DIR

Joins a JSON profile, the BEP and the metrics aspect's files into DIR/build_metrics.json,
appends a line to the history, and writes the dashboard (DIR/dashboard/index.html).
With --bazel-exit-status N (N != 0: the build or a test failed) the report goes to
DIR/build_metrics.failed.json instead, and the last good report, its history and its
dashboard stay as they were.
Exit status: 0 written, 1 written but not in the specification's format (or below
--require-hit-rate), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from tools.metrics.report import aspect, bep, compute, execlog, history, profile, provenance, spec_format


GOOD_REPORT = "build_metrics.json"
# A failed build's report, beside the last good one, never in its place.
FAILED_REPORT = "build_metrics.failed.json"


def _path(value: str) -> Path:
    """Paths are relative to where `bazel run` was started, not to the runfiles tree."""
    base = os.environ.get("BUILD_WORKING_DIRECTORY", "")
    path = Path(value).expanduser()
    return path if path.is_absolute() or not base else Path(base) / path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="report", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", type=_path, required=True, help="JSON trace profile (--profile)")
    p.add_argument("--bep", type=_path, required=True, help="BEP JSON file (--build_event_json_file)")
    p.add_argument("--aspect-dir", type=_path,
                   help="folder holding the aspect's _metrics/*.json (default: the files the BEP names)")
    p.add_argument("--exec-log", type=_path, help="execution log (--execution_log_json_file), for exact cache misses")
    p.add_argument("--out", type=_path, required=True, help="output folder")
    p.add_argument("--bazel-exit-status", type=int, default=0, metavar="N",
                   help="exit status of the Bazel step the profile comes from; N != 0 writes "
                        f"OUT/{FAILED_REPORT} and leaves OUT/{GOOD_REPORT}, the history and the dashboard alone")
    p.add_argument("--history", type=_path, help="history file (default: OUT/history.jsonl)")
    p.add_argument("--no-history", action="store_true", help="do not append to the history")
    p.add_argument("--jobs", type=int, help="--jobs of the build (default: from the BEP, else nproc)")
    p.add_argument("--commit", default=os.environ.get("METRICS_COMMIT", ""), help="commit to record in the history")
    p.add_argument("--no-dashboard", action="store_true", help="skip the PNGs and index.html")
    p.add_argument("--no-outputs", action="store_true", help="omit per-output file lists from the per-target detail")
    p.add_argument("--top", type=int, default=15, help="targets in the top-N plots")
    p.add_argument("--attach", action="append", default=[], metavar="KEY=FILE",
                   help="embed a JSON file in the report under attachments.KEY (e.g. the cache's /status)")
    p.add_argument("--coverage", type=_path, metavar="FILE",
                   help="per-layer Python line coverage (ci/coverage.sh's coverage.json) -> layers.layerN.coverage_percent")
    p.add_argument("--rust-coverage", type=_path, metavar="FILE",
                   help="per-layer Rust line coverage (ci/rust_coverage.sh's rust_coverage.json), joined with --coverage")
    p.add_argument("--require-hit-rate", type=float, metavar="R",
                   help="exit 1 (after writing everything) when the remote cache hit rate is below R, "
                        "listing the actions that missed")
    return p


def _aspect_files(args: argparse.Namespace, events: bep.BuildEvents) -> tuple[list[Path], Path | None]:
    if args.aspect_dir:
        if not args.aspect_dir.is_dir():
            raise ValueError(f"--aspect-dir {args.aspect_dir}: not a folder")
        return aspect.find_files(args.aspect_dir), args.aspect_dir
    # Keep a copy next to the report so it can be recomputed after bazel-out changes.
    copy_root = args.out / "raw" / "aspect"
    copies = []
    for src in events.aspect_files:
        if not src.exists():
            raise ValueError(f"aspect file named by the BEP is gone: {src} (pass --aspect-dir)")
        parts = src.parts
        rel = Path(*parts[parts.index("bin") + 1:]) if "bin" in parts else Path(src.name)
        dst = copy_root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        copies.append(dst)
    return copies, copy_root


def run(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        for name in ("profile", "bep", "exec_log"):
            path = getattr(args, name)
            if path is not None and not path.is_file():
                raise ValueError(f"--{name.replace('_', '-')} {path}: no such file")
        args.out.mkdir(parents=True, exist_ok=True)
        prof = profile.parse(args.profile)
        events = bep.parse(args.bep)
        spawns = execlog.parse(args.exec_log) if args.exec_log else None
        if spawns is not None:
            prof = profile.with_executions(prof, execlog.executions(spawns))
        files, aspect_root = _aspect_files(args, events)
        targets = aspect.load(files)
        coverage = json.loads(args.coverage.read_text()) if args.coverage else None
        rust_coverage = json.loads(args.rust_coverage.read_text()) if args.rust_coverage else None
        attachments = {}
        for item in args.attach:
            key, sep, name = item.partition("=")
            if not sep or not key:
                raise ValueError(f"--attach {item}: expected KEY=FILE")
            attachments[key] = json.loads(_path(name).read_text())
    except (ValueError, OSError, json.JSONDecodeError) as err:
        print(f"report: bad input: {err}", file=sys.stderr)
        return 2

    inputs = {
        "profile": provenance.describe_file(args.profile),
        "bep": provenance.describe_file(args.bep),
        "aspect": {"root": str(aspect_root or ""), **provenance.describe_files(files, aspect_root)},
    }
    if args.exec_log:
        inputs["exec_log"] = provenance.describe_file(args.exec_log)
    report = compute.compute(
        prof, events, targets, spawns=spawns, jobs=args.jobs, machine=provenance.machine(),
        inputs=inputs, include_outputs=not args.no_outputs,
    )
    if attachments:
        report["attachments"] = attachments
    if coverage is not None or rust_coverage is not None:
        try:
            compute.add_coverage(report, coverage, rust_coverage)
        except ValueError as err:
            print(f"report: bad input: {err}", file=sys.stderr)
            return 2
        for key, path in (("coverage", args.coverage), ("rust_coverage", args.rust_coverage)):
            if path is not None:
                inputs[key] = provenance.describe_file(path)
    verdict = _hit_rate_verdict(report, args.require_hit_rate)
    if verdict is not None:
        report["cache"]["required_hit_rate"] = args.require_hit_rate
        report["cache"]["hit_rate_ok"] = verdict
    build_failed = args.bazel_exit_status != 0
    out_file = args.out / (FAILED_REPORT if build_failed else GOOD_REPORT)
    out_file.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    departures = spec_format.problems(report)
    if departures:
        print(f"report: {out_file} does not match {spec_format.SCHEMA_FILE.name}:", file=sys.stderr)
        for line in departures:
            print(f"  {line}", file=sys.stderr)
        return 1
    if build_failed:
        print(f"{out_file}: {report['project_status']} (bazel exit status {args.bazel_exit_status}); "
              f"{args.out / GOOD_REPORT}, the history and the dashboard keep the last good build")
        return 0
    (args.out / FAILED_REPORT).unlink(missing_ok=True)  # an older failure no longer describes this tree

    history_file = args.history or args.out / "history.jsonl"
    if not args.no_history:
        history.append(history_file, history.summary(report, args.commit))
    if not args.no_dashboard:
        from tools.metrics.report import dashboard  # matplotlib only when drawing

        dashboard.write(report, history.read(history_file), args.out / "dashboard", args.top)

    print(f"{out_file}: {report['project_status']}; wall {report['total_times']['wall_time_seconds']} s, "
          f"critical path {report['critical_path']['seconds']} s, cache hit rate {report['cache']['hit_rate']}")
    if verdict is False:
        cache = report["cache"]
        print(f"report: remote cache hit rate {cache['hit_rate']} < required {args.require_hit_rate} "
              f"({cache['hit_rate_source']}); missed:", file=sys.stderr)
        for miss in cache.get("misses", []):
            print(f"  {miss['mnemonic']}: {miss['progress_message']} -> {miss['primary_output']}", file=sys.stderr)
        if "misses" not in cache:
            print("  (pass --exec-log to list the missed actions)", file=sys.stderr)
        return 1
    return 0


def _hit_rate_verdict(report: dict, required: float | None) -> bool | None:
    if required is None:
        return None
    rate = report["cache"].get("hit_rate")
    return rate is not None and rate >= required


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
