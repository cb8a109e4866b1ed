"""Digests of the raw inputs (so any figure can be recomputed) and the machine's identity."""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path
from typing import Any, Iterable


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def describe_file(path: Path) -> dict[str, Any]:
    return {"path": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}


def describe_files(paths: Iterable[Path], root: Path | None = None) -> dict[str, Any]:
    """One digest over many files: sha256 of the sorted "<sha256>  <name>" lines (as sha256sum prints)."""
    lines = []
    for path in paths:
        name = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
        lines.append(f"{sha256_file(path)}  {name}")
    lines.sort()
    return {
        "files": len(lines),
        "sha256_of_sha256sums": hashlib.sha256(("\n".join(lines) + "\n").encode()).hexdigest() if lines else "",
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count() or 1,
        "cpu_model": cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
    }
