"""The history file: one JSON line per report, the basis of the dashboard's trends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def summary(report: dict[str, Any], commit: str = "") -> dict[str, Any]:
    """The figures of a report worth tracking over time."""
    return {
        "build_timestamp": report.get("build_timestamp", ""),
        "commit": commit,
        "command": report.get("command", ""),
        "project_status": report.get("project_status", ""),
        "total_times": report.get("total_times", {}),
        "parallel_build_efficiency": report.get("system_metrics", {}).get("parallel_build_efficiency"),
        "cache_hit_rate": report.get("cache", {}).get("hit_rate"),
        "test_cache_hit_rate": report.get("cache", {}).get("test_cache_hit_rate"),
        "layers": {name: _layer(layer) for name, layer in report.get("layers", {}).items()},
    }


def _layer(layer: dict[str, Any]) -> dict[str, Any]:
    figures = {k: layer.get(k) for k in ("build_time_seconds", "test_time_seconds", "status", "binary_size_mb")}
    if "coverage_percent" in layer:  # only runs with coverage measured it
        figures["coverage_percent"] = layer["coverage_percent"]
    return figures


# Entries written before the report took the specification's key names (schema 1).
_RENAMED_TOTALS = {"build_time_seconds": "build_seconds", "test_time_seconds": "test_seconds"}


def _upgrade(entry: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 entry with today's key names, so old history keeps drawing trends."""
    if "generated_at" in entry and "build_timestamp" not in entry:
        entry["build_timestamp"] = entry.pop("generated_at")
    totals = entry.get("total_times")
    if isinstance(totals, dict):
        for old, new in _RENAMED_TOTALS.items():
            if old in totals and new not in totals:
                totals[new] = totals.pop(old)
    return entry


def append(path: Path, entry: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")


def read(path: Path) -> list[dict[str, Any]]:
    """Entries in file order; unreadable lines are skipped (a history is advisory)."""
    if not path.exists():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(_upgrade(entry))
    return entries
