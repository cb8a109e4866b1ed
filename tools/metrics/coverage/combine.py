"""Per-layer Python line coverage from the data files ci/coverage.sh collected.

    bazel run //tools/metrics/coverage:combine -- --data-dir D --workspace W --out coverage.json

Each test ran in its own runfiles tree, so the same source has many paths
(`.../<test>.runfiles/chimera/layers/layer1_discovery/py/...`); they are mapped back to
the workspace (`layers/layer1_discovery/py/...`) and combined. A layer's figure is
covered statements / statements over every file of `layers/layerN_*/py` (a file no
test imported counts with none covered). Exit 2: bad input or no data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import coverage

_LAYER_FILE = re.compile(r"(?:^|/)(layers/(layer\d+)_[^/]+/py/.+\.py)$")


def per_layer(data_files: list[Path], workspace: Path, scratch: Path) -> dict[str, Any]:
    """layerN -> statements, covered, files, coverage_percent."""
    merged = coverage.CoverageData(basename=str(scratch / ".coverage.merged"))
    for path in data_files:
        part = coverage.CoverageData(basename=str(path))
        part.read()
        lines: dict[str, list[int]] = {}
        for measured in part.measured_files():
            match = _LAYER_FILE.search(measured)
            if match:
                lines.setdefault(str(workspace / match.group(1)), []).extend(part.lines(measured) or [])
        merged.add_lines(lines)
    merged.write()
    cov = coverage.Coverage(data_file=str(scratch / ".coverage.merged"))
    cov.load()
    layers: dict[str, Any] = {}
    # Every source of a layer's py/ counts, imported by a test or not (then 0 covered).
    sources = sorted(str(f) for f in workspace.glob("layers/layer*_*/py/**/*.py"))
    for source in sorted(set(sources) | set(merged.measured_files())):
        layer = _LAYER_FILE.search(source).group(2)
        _, statements, _, missing, _ = cov.analysis2(source)
        entry = layers.setdefault(layer, {"statements": 0, "covered": 0, "files": 0, "files_not_imported": 0})
        entry["statements"] += len(statements)
        entry["covered"] += len(statements) - len(missing)
        entry["files"] += 1
        entry["files_not_imported"] += source not in merged.measured_files()
    for entry in layers.values():
        entry["coverage_percent"] = round(100 * entry["covered"] / entry["statements"], 2) if entry["statements"] else 0.0
    return layers


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="coverage-combine", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, required=True, help="folder holding .coverage.* files (any depth)")
    p.add_argument("--workspace", type=Path, required=True, help="the workspace root (sources are read there)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    base = Path(os.environ.get("BUILD_WORKING_DIRECTORY", "."))
    data_dir, workspace, out = (x if x.is_absolute() else base / x for x in (args.data_dir, args.workspace, args.out))
    files = sorted(f for f in data_dir.rglob(".coverage*") if f.is_file())
    if not files:
        print(f"coverage-combine: no .coverage* files under {data_dir}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        layers = per_layer(files, workspace, Path(scratch))
    out.write_text(json.dumps({"data_files": len(files), "layers": layers}, indent=2, sort_keys=True) + "\n")
    for name, entry in sorted(layers.items()):
        print(f"{name}: {entry['coverage_percent']:.2f}% of {entry['statements']} statements in {entry['files']} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
