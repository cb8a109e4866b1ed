"""Regression gate: compares a build_metrics.json with a committed baseline.

    bazel run //tools/metrics:gate -- --baseline ci/metrics_baseline.json \\
        --report build-metrics/build_metrics.json

Fails (exit 1) when, for any layer of the seed schema (layer1..layer8):
  * binary_size_mb grew by more than --max-size-growth-pct percent, or
  * build_time_seconds or test_time_seconds grew by more than --max-time-ratio
    times the baseline AND by more than --min-time-delta-seconds, or
  * coverage_percent (Python statements and Rust lines together), or
    python_coverage_percent or rust_coverage_percent alone, dropped by more than
    --max-coverage-drop points (each only when both sides have it: ci/coverage.sh), or
    a coverage run lacks a language the baseline measured for the layer.
  * a layer of the baseline vanished from the report, or has fewer targets or
    fewer tests than the baseline counts: deleting tests must show up in the
    same change as a refreshed baseline (ci/update_metrics_baseline.sh).
Build times are compared only when both sides executed their actions (a layer
whose status is "cached" built nothing, so its time says nothing). A layer the
baseline lacks ("missing") is new: it is listed, not gated. Exit 2: bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LAYERS = tuple(f"layer{n}" for n in range(1, 9))

# Both languages together, then each alone: a Rust drop must not hide behind Python's
# larger count (tools/metrics/coverage/attach.py writes them).
COVERAGE_METRICS = ("coverage_percent", "python_coverage_percent", "rust_coverage_percent")

# Counts a layer may not lose against the baseline (tools/metrics/report/compute.py).
COUNT_METRICS = ("targets", "tests")

REFRESH = "unless intended: refresh ci/metrics_baseline.json in the same change (ci/update_metrics_baseline.sh)"


class BadInput(Exception):
    pass


@dataclass(frozen=True)
class Limits:
    max_size_growth_pct: float = 10.0
    max_time_ratio: float = 1.5
    min_time_delta_seconds: float = 10.0
    min_size_delta_mb: float = 0.0
    max_coverage_drop: float = 2.0


@dataclass(frozen=True)
class Finding:
    layer: str
    metric: str
    baseline: float
    current: float
    reason: str
    regression: bool


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise BadInput(f"{path}: {err.strerror}") from err
    except json.JSONDecodeError as err:
        raise BadInput(f"{path}: not JSON: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("layers"), dict):
        raise BadInput(f"{path}: not a build metrics report (no \"layers\" object)")
    for name, layer in data["layers"].items():
        if not isinstance(layer, dict):
            raise BadInput(f"{path}: layers.{name} is not an object")
        for key in ("build_time_seconds", "test_time_seconds", "binary_size_mb", *COVERAGE_METRICS,
                    *COUNT_METRICS):
            value = layer.get(key, 0)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadInput(f"{path}: layers.{name}.{key} is not a number: {value!r}")
    return data


def _layer(report: dict[str, Any], name: str) -> dict[str, Any]:
    return report["layers"].get(name) or {"status": "missing"}


def compare(baseline: dict[str, Any], current: dict[str, Any], limits: Limits) -> list[Finding]:
    findings = []
    for name in LAYERS:
        base = _layer(baseline, name)
        now = _layer(current, name)
        if base.get("status", "missing") == "missing":
            if now.get("status", "missing") != "missing":
                findings.append(Finding(name, "layer", 0, 0, "new layer (not in the baseline): not gated", False))
            continue
        if now.get("status", "missing") == "missing":
            findings.append(Finding(name, "layer", 0, 0, f"layer vanished from the report ({REFRESH})", True))
            continue

        for metric in COUNT_METRICS:
            if metric in base:
                b, c = int(base[metric]), int(now.get(metric, 0))
                if c < b:
                    findings.append(Finding(name, metric, b, c, f"{b - c} fewer ({REFRESH})", True))

        b, c = float(base.get("binary_size_mb", 0)), float(now.get("binary_size_mb", 0))
        if c > b:
            growth = (c - b) / b * 100 if b > 0 else float("inf")
            bad = growth > limits.max_size_growth_pct and (c - b) > limits.min_size_delta_mb
            findings.append(Finding(name, "binary_size_mb", b, c,
                                    f"+{growth:.1f}% (limit {limits.max_size_growth_pct:g}%)", bad))

        for metric in COVERAGE_METRICS:
            if metric in base and metric not in now and "coverage_percent" in now:
                # Coverage was measured, but not this language's: its tests stopped reporting.
                findings.append(Finding(name, metric, float(base[metric]), 0,
                                        "measured in the baseline, missing from this coverage run", True))
            if metric in base and metric in now:
                b, c = float(base[metric]), float(now[metric])
                if c < b:
                    findings.append(Finding(name, metric, b, c,
                                            f"-{b - c:.2f} points (limit {limits.max_coverage_drop:g})",
                                            b - c > limits.max_coverage_drop))

        for metric in ("build_time_seconds", "test_time_seconds"):
            if metric == "build_time_seconds" and "cached" in (base.get("status"), now.get("status")):
                continue
            b, c = float(base.get(metric, 0)), float(now.get(metric, 0))
            if c <= b:
                continue
            ratio = c / b if b > 0 else float("inf")
            bad = ratio > limits.max_time_ratio and (c - b) > limits.min_time_delta_seconds
            findings.append(Finding(name, metric, b, c,
                                    f"x{ratio:.2f}, +{c - b:.1f} s (limits x{limits.max_time_ratio:g} and "
                                    f"+{limits.min_time_delta_seconds:g} s)", bad))
    return findings


_TARGET_KEYS = {
    "binary_size_mb": ("output_bytes", 1 / 1_000_000),
    "build_time_seconds": ("build_time_seconds", 1.0),
    "test_time_seconds": ("test_time_seconds", 1.0),
}


def moved_targets(baseline: dict[str, Any], current: dict[str, Any], layer: str, metric: str,
                  top: int) -> list[tuple[str, float, float]]:
    """The layer's targets whose figure for `metric` changed most: (label, before, after)."""
    key, scale = _TARGET_KEYS.get(metric, (metric, 1.0))
    before = baseline.get("targets", {})
    after = current.get("targets", {})
    rows = []
    for label in set(before) | set(after):
        b = before.get(label, {})
        a = after.get(label, {})
        if (a or b).get("layer") != layer:
            continue
        if metric == "binary_size_mb" and not (a or b).get("deliverable", False):
            continue
        vb = float(b.get(key, 0) or 0) * scale
        va = float(a.get(key, 0) or 0) * scale
        if va != vb:
            rows.append((label, vb, va))
    rows.sort(key=lambda r: abs(r[2] - r[1]), reverse=True)
    return rows[:top]


def _path(value: str) -> Path:
    base = os.environ.get("BUILD_WORKING_DIRECTORY", "")
    path = Path(value)
    return path if path.is_absolute() or not base else Path(base) / path


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="gate", description=__doc__.split("\n\n")[0])
    p.add_argument("--baseline", type=_path, required=True)
    p.add_argument("--report", type=_path, required=True)
    p.add_argument("--max-size-growth-pct", type=float, default=Limits.max_size_growth_pct)
    p.add_argument("--max-time-ratio", type=float, default=Limits.max_time_ratio)
    p.add_argument("--min-time-delta-seconds", type=float, default=Limits.min_time_delta_seconds)
    p.add_argument("--min-size-delta-mb", type=float, default=Limits.min_size_delta_mb)
    p.add_argument("--max-coverage-drop", type=float, default=Limits.max_coverage_drop,
                   help="points of coverage_percent a layer may lose")
    p.add_argument("--top", type=int, default=5, help="moved targets to list per finding")
    args = p.parse_args(argv)
    limits = Limits(args.max_size_growth_pct, args.max_time_ratio, args.min_time_delta_seconds, args.min_size_delta_mb,
                    args.max_coverage_drop)
    try:
        if (limits.max_size_growth_pct < 0 or limits.max_time_ratio < 1 or limits.min_time_delta_seconds < 0
                or limits.max_coverage_drop < 0):
            raise BadInput("limits: --max-size-growth-pct >= 0, --max-time-ratio >= 1, --min-time-delta-seconds >= 0, "
                           "--max-coverage-drop >= 0")
        baseline = load(args.baseline)
        current = load(args.report)
    except BadInput as err:
        print(f"gate: bad input: {err}", file=sys.stderr)
        return 2

    findings = compare(baseline, current, limits)
    regressions = [f for f in findings if f.regression]
    for f in findings:
        tag = "REGRESSION" if f.regression else "note"
        if f.metric == "layer":
            print(f"{tag}: {f.layer}: {f.reason}")
            continue
        print(f"{tag}: {f.layer}.{f.metric}: {f.baseline:g} -> {f.current:g} ({f.reason})")
        for label, before, after in moved_targets(baseline, current, f.layer, f.metric, args.top):
            print(f"    {label}: {before:g} -> {after:g}")
    print(f"gate: {len(regressions)} regression(s) against {args.baseline}")
    return 1 if regressions else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
