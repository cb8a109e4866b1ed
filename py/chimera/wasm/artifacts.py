"""Finds a layer's data files (its .wasm core, its JSON settings).

A file is looked up, in order: in the environment variable named for it;
through Bazel runfiles (``bazel-runfiles``, else ``$RUNFILES_DIR`` /
``$TEST_SRCDIR`` + ``chimera/<path>``); relative to the working directory,
which is the runfiles root under ``bazel test`` and the repository root for a
developer. The error lists every place tried.

Each layer names its files once, as :class:`Artifact` constants in its own
``artifacts`` module, so this is the one place that knows how to find them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["WORKSPACE", "Artifact", "load_json", "locate"]

WORKSPACE = "chimera"


class Artifact(NamedTuple):
    """A file by its workspace path and the environment variable overriding it."""

    workspace_path: str
    env_var: str


def locate(artifact: Artifact | tuple[str, str]) -> Path:
    """Path of ``artifact`` (a ``(workspace path, env var)`` pair)."""
    relpath, env_var = artifact
    override = os.environ.get(env_var)
    if override:
        return Path(override)
    tried: list[str] = []
    loc = _rlocation(f"{WORKSPACE}/{relpath}")
    if loc:
        tried.append(loc)
        if Path(loc).is_file():
            return Path(loc)
    for var in ("RUNFILES_DIR", "TEST_SRCDIR"):
        root = os.environ.get(var)
        if root:
            cand = Path(root) / WORKSPACE / relpath
            tried.append(str(cand))
            if cand.is_file():
                return cand
    cand = Path(relpath)
    tried.append(str(cand.absolute()))
    if cand.is_file():
        return cand
    raise FileNotFoundError(f"{relpath} not found; set {env_var} (looked in: {', '.join(tried)})")


def load_json(path: Path | str | None, default: Artifact | tuple[str, str]) -> tuple[Any, Path]:
    """The JSON document at ``path`` (``default``'s file when None) and where it was.

    A file that is not JSON is a ValueError naming it, so a layer's start-up
    error says which settings file to fix.
    """
    source = Path(path) if path is not None else locate(default)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not valid JSON: {exc}") from None
    return data, source


def _rlocation(path: str) -> str | None:
    try:
        from runfiles import Runfiles  # bazel-runfiles; absent outside Bazel is fine
    except ImportError:
        return None
    rf = Runfiles.Create()
    loc = rf.Rlocation(path) if rf is not None else None
    return str(loc) if loc else None
