"""Reads the per-target JSON files written by //tools/metrics:defs.bzl%metrics_aspect."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

METRICS_DIR = "_metrics"


@dataclass(frozen=True)
class OutputFile:
    path: str
    size_bytes: int


@dataclass(frozen=True)
class TargetInfo:
    label: str
    kind: str
    layer: str
    is_test: bool
    deliverable: bool
    deps: tuple[str, ...]
    outputs: tuple[OutputFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(o.size_bytes for o in self.outputs)


def find_files(directory: Path) -> list[Path]:
    """Every aspect JSON under `directory`: <package>/_metrics/<target name>.json (a target
    name may hold slashes, so the file can sit deeper below `_metrics`)."""
    return sorted(
        p for p in directory.rglob("*.json")
        if METRICS_DIR in p.relative_to(directory).parts[:-1]
    )


def _parse_one(path: Path) -> TargetInfo:
    data = json.loads(path.read_text())
    try:
        return TargetInfo(
            label=str(data["label"]),
            kind=str(data["kind"]),
            layer=str(data["layer"]),
            is_test=bool(data.get("is_test", False)),
            deliverable=bool(data.get("deliverable", False)),
            deps=tuple(str(d) for d in data.get("deps", [])),
            outputs=tuple(OutputFile(str(o["path"]), int(o["size_bytes"])) for o in data["outputs"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: not a metrics aspect file: {err!r}") from err


def load(paths: Iterable[Path]) -> dict[str, TargetInfo]:
    """label -> TargetInfo. A label seen in several configurations keeps all their outputs."""
    targets: dict[str, TargetInfo] = {}
    for path in paths:
        info = _parse_one(path)
        seen = targets.get(info.label)
        if seen is not None:
            known = {o.path for o in seen.outputs}
            extra = tuple(o for o in info.outputs if o.path not in known)
            info = TargetInfo(seen.label, seen.kind, seen.layer, seen.is_test, seen.deliverable,
                              seen.deps, seen.outputs + extra)
        targets[info.label] = info
    return targets
