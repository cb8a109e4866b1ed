"""Puts per-layer coverage into an existing build metrics report (a CI report or the baseline).

    bazel run //tools/metrics/coverage:attach -- --report build_metrics.json \\
        --coverage coverage.json --rust-coverage rust_coverage.json --out with_coverage.json
    bazel run //tools/metrics/coverage:attach -- --report new_baseline.json \\
        --from-report ci/metrics_baseline.json --out new_baseline.json

The figures are those `//tools/metrics:report --coverage --rust-coverage` writes
(compute.add_coverage): layers.layerN.python_coverage_percent (statements),
rust_coverage_percent (lines), their *_measured counts, and coverage_percent, all
covered over all measured units of both languages. `--from-report` carries another
report's figures over instead (ci/update_metrics_baseline.sh keeps the baseline's
coverage when it re-records the build). A layer's old figures are always replaced,
never mixed with new ones. Exit 2: bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from tools.metrics.gate.gate import BadInput, load
from tools.metrics.report import compute, provenance

COVERAGE_KEYS = (
    "coverage_percent",
    "python_coverage_percent",
    "python_coverage_measured",
    "rust_coverage_percent",
    "rust_coverage_measured",
)


# Where the figures came from, under the report's "inputs".
INPUT_KEYS = ("coverage", "rust_coverage")


def strip_coverage(report: dict[str, Any]) -> None:
    for layer in report["layers"].values():
        for key in COVERAGE_KEYS:
            layer.pop(key, None)
    for key in INPUT_KEYS:
        report.get("inputs", {}).pop(key, None)


def carry_coverage(report: dict[str, Any], source: dict[str, Any]) -> None:
    """Copies every layer's coverage figures of `source`, and where they came from, into `report`."""
    for name, layer in source["layers"].items():
        figures = {k: layer[k] for k in COVERAGE_KEYS if isinstance(layer, dict) and k in layer}
        if figures and name in report["layers"]:
            report["layers"][name].update(figures)
    inputs = source.get("inputs") if isinstance(source.get("inputs"), dict) else {}
    for key in INPUT_KEYS:
        if key in inputs:
            report.setdefault("inputs", {})[key] = inputs[key]


def _path(value: str) -> Path:
    path = Path(value)
    base = os.environ.get("BUILD_WORKING_DIRECTORY", "")
    return path if path.is_absolute() or not base else Path(base) / path


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="coverage-attach", description=__doc__.split("\n\n")[0])
    p.add_argument("--report", type=_path, required=True, help="the build metrics report to add coverage to")
    p.add_argument("--coverage", type=_path, help="ci/coverage.sh's coverage.json (Python)")
    p.add_argument("--rust-coverage", type=_path, help="ci/coverage.sh's rust_coverage.json (Rust)")
    p.add_argument("--from-report", type=_path, help="take the coverage figures of this report instead")
    p.add_argument("--out", type=_path, required=True)
    args = p.parse_args(argv)
    try:
        if args.from_report and (args.coverage or args.rust_coverage):
            raise ValueError("--from-report cannot be combined with --coverage / --rust-coverage")
        if not (args.from_report or args.coverage or args.rust_coverage):
            raise ValueError("nothing to attach: give --coverage and/or --rust-coverage, or --from-report")
        report = load(args.report)
        strip_coverage(report)
        if args.from_report:
            carry_coverage(report, load(args.from_report))
        else:
            python = load(args.coverage) if args.coverage else None
            rust = load(args.rust_coverage) if args.rust_coverage else None
            compute.add_coverage(report, python, rust)
            inputs = report.setdefault("inputs", {})
            for key, path in zip(INPUT_KEYS, (args.coverage, args.rust_coverage)):
                if path is not None:
                    inputs[key] = provenance.describe_file(path)
    except (BadInput, ValueError) as err:
        print(f"coverage-attach: bad input: {err}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n")
    for name, layer in sorted(report["layers"].items()):
        if "coverage_percent" in layer:
            print(f"{name}: {layer['coverage_percent']:.2f}% (Python {layer.get('python_coverage_percent', '-')}%, "
                  f"Rust {layer.get('rust_coverage_percent', '-')}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
