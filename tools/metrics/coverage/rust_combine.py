"""Per-layer Rust line coverage from the raw profiles the instrumented rust_tests wrote.

    bazel run //tools/metrics/coverage:rust_combine -- --data-dir D --bin-dir bazel-bin \\
        --workspace W --llvm-profdata llvm-profdata-14 --llvm-cov llvm-cov-14 --out rust_coverage.json

`ci/coverage.sh` builds with `--config=coverage-rust`, so every rust_test writes
`<test>-<pid>.profraw` into its outputs (D/<package>/<test>/test.outputs/...). Per
layer, the profiles of the layer's tests are merged (llvm-profdata merge) and read
against the layer's instrumented test binaries (bazel-bin/<package>/<test>) with
`llvm-cov export -format=lcov`: one count per distinct source line (a line is
covered when any instantiation ran it; `llvm-cov report` instead sums lines per
function, so a closure's lines count twice there). A layer's figure covers its own sources, `layers/layerN_*/rust/`
(the core and the face crate), not the shared crates or std, and leaves out the
lines of `#[cfg(test)] mod` blocks: the unit tests live in the sources they test
and would otherwise count as covered code. Exit 2: bad input or no data.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_LAYER_SOURCE = re.compile(r"^(layers/(layer\d+)_[^/]+/rust/.+\.rs)$")
_LAYER_PACKAGE = re.compile(r"^layers/(layer\d+)_[^/]+$")
_TEST_MODULE = re.compile(r"^(\s*)#\[cfg\(test\)\]\s*$")


class BadInput(Exception):
    pass


@dataclass
class LayerTests:
    """One layer's instrumented test binaries and the raw profiles they wrote."""

    binaries: list[Path] = field(default_factory=list)
    profiles: list[Path] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


def find_tests(data_dir: Path, bin_dir: Path) -> dict[str, LayerTests]:
    """layerN -> its tests, from D/<package>/<test>/test.outputs/**/<test>-<pid>.profraw."""
    layers: dict[str, LayerTests] = {}
    by_test: dict[str, list[Path]] = {}
    for profile in sorted(data_dir.rglob("*.profraw")):
        relative = profile.relative_to(data_dir).as_posix()
        test_dir, sep, _ = relative.partition("/test.outputs/")
        if sep:
            by_test.setdefault(test_dir, []).append(profile)
    for test_dir, profiles in sorted(by_test.items()):
        package, _, name = test_dir.rpartition("/")
        match = _LAYER_PACKAGE.match(package)
        if not match:
            continue
        binary = bin_dir / package / name
        if not binary.is_file():
            raise BadInput(f"{binary}: no instrumented test binary for the profiles of //{package}:{name}")
        tests = layers.setdefault(match.group(1), LayerTests())
        tests.binaries.append(binary)
        tests.profiles.extend(profiles)
        tests.labels.append(f"//{package}:{name}")
    return layers


def parse_lcov(text: str) -> dict[str, dict[int, int]]:
    """Normalized source path -> line -> execution count (the highest where a file repeats)."""
    files: dict[str, dict[int, int]] = {}
    lines: dict[int, int] = {}
    for raw in text.splitlines():
        if raw.startswith("SF:"):
            lines = files.setdefault(os.path.normpath(raw[3:]), {})
        elif raw.startswith("DA:"):
            number, count = raw[3:].split(",")[:2]
            lines[int(number)] = max(lines.get(int(number), 0), int(count))
    return files


def test_module_lines(source: str) -> set[int]:
    """Line numbers (1-based) of every `#[cfg(test)] mod` block.

    The sources pass `rustfmt --check` (each crate's _rustfmt test), so a block ends
    at the first later line that is its opening line's indentation plus `}`.
    """
    lines = source.splitlines()
    excluded: set[int] = set()
    index = 0
    while index < len(lines):
        match = _TEST_MODULE.match(lines[index])
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if match and following.lstrip().startswith("mod ") and following.rstrip().endswith("{"):
            close = match.group(1) + "}"
            end = next((n for n in range(index + 2, len(lines)) if lines[n].rstrip() == close), len(lines) - 1)
            excluded.update(range(index + 1, end + 2))
            index = end + 1
            continue
        index += 1
    return excluded


def layer_figures(layer: str, lcov: dict[str, dict[int, int]], workspace: Path) -> dict[str, Any]:
    """lines, covered, coverage_percent (+ what was left out) of one layer's own sources."""
    lines = covered = test_lines = files = 0
    for path, counts in sorted(lcov.items()):
        match = _LAYER_SOURCE.match(path)
        if not match or match.group(2) != layer:
            continue
        source = workspace / path
        if not source.is_file():
            raise BadInput(f"{source}: measured, but not in the workspace")
        excluded = test_module_lines(source.read_text())
        files += 1
        for number, count in counts.items():
            if number in excluded:
                test_lines += 1
                continue
            lines += 1
            covered += count > 0
    return {
        "lines": lines,
        "covered": covered,
        "coverage_percent": round(100 * covered / lines, 2) if lines else 0.0,
        "files": files,
        "test_module_lines_excluded": test_lines,
    }


def _run(command: list[str], cwd: Path | None = None) -> str:
    try:
        result = subprocess.run(command, check=False, capture_output=True, text=True, cwd=cwd)
    except OSError as err:
        raise BadInput(f"{command[0]}: {err.strerror}") from err
    if result.returncode != 0:
        raise BadInput(f"{' '.join(command[:2])} failed (exit {result.returncode}): {result.stderr.strip()}")
    return result.stdout


def measure(layers: dict[str, LayerTests], profdata: str, cov: str, workspace: Path, scratch: Path) -> dict[str, Any]:
    out = {}
    for layer, tests in sorted(layers.items()):
        merged = scratch / f"{layer}.profdata"
        _run([profdata, "merge", "-sparse", *map(str, tests.profiles), "-o", str(merged)])
        objects = [str(tests.binaries[0])] + [arg for b in tests.binaries[1:] for arg in ("-object", str(b))]
        # Source paths are relative (the rules remap the sandbox to "."): from the workspace.
        lcov = _run([cov, "export", "-format=lcov", "-instr-profile", str(merged), *objects], cwd=workspace)
        out[layer] = layer_figures(layer, parse_lcov(lcov), workspace)
        out[layer]["test_targets"] = sorted(tests.labels)
        out[layer]["profiles"] = len(tests.profiles)
    return out


def _tool_version(tool: str) -> str:
    for line in _run([tool, "--version"]).splitlines():
        if "version" in line.lower():
            return line.strip()
    return "unknown"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="rust-coverage-combine", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, required=True, help="the tests' extracted outputs (.profraw, any depth)")
    p.add_argument("--bin-dir", type=Path, required=True, help="bazel-bin of the instrumented build")
    p.add_argument("--workspace", type=Path, required=True, help="the workspace root (sources are read there)")
    p.add_argument("--llvm-profdata", required=True, help="llvm-profdata of the compiler's LLVM (llvm-profdata-14)")
    p.add_argument("--llvm-cov", required=True, help="llvm-cov of the compiler's LLVM (llvm-cov-14)")
    p.add_argument("--compiler", default="", help="the compiler that instrumented the tests (recorded)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    base = Path(os.environ.get("BUILD_WORKING_DIRECTORY", "."))
    data_dir, bin_dir, workspace, out = (x if x.is_absolute() else base / x
                                         for x in (args.data_dir, args.bin_dir, args.workspace, args.out))
    try:
        layers = find_tests(data_dir, bin_dir)
        if not layers:
            raise BadInput(f"no .profraw of a layer's rust_test under {data_dir} (built with --config=coverage-rust?)")
        with tempfile.TemporaryDirectory() as scratch:
            figures = measure(layers, args.llvm_profdata, args.llvm_cov, workspace, Path(scratch))
        report = {"compiler": args.compiler, "llvm_cov": _tool_version(args.llvm_cov), "layers": figures}
    except BadInput as err:
        print(f"rust-coverage-combine: {err}", file=sys.stderr)
        return 2
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    for name, entry in sorted(figures.items()):
        print(f"{name}: Rust {entry['coverage_percent']:.2f}% of {entry['lines']} lines in {entry['files']} files "
              f"({entry['test_module_lines_excluded']} test-module lines left out; {', '.join(entry['test_targets'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
