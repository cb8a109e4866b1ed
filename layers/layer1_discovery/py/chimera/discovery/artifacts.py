"""Where the layer's data files live (the one place that knows).

A file is looked up, in order: in the environment variable named for it;
through Bazel runfiles (``bazel-runfiles``, else ``$RUNFILES_DIR`` /
``$TEST_SRCDIR`` + ``chimera/<path>``); relative to the working directory,
which is the runfiles root under ``bazel test`` and the repository root for a
developer. The error lists every place tried.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CORE_WASM", "DEFAULT_CONFIG", "locate"]

WORKSPACE = "chimera"
#: The discovery core module built by ``//layers/layer1_discovery:discovery_core_module``.
CORE_WASM = ("layers/layer1_discovery/discovery_core_module.wasm", "CHIMERA_DISCOVERY_CORE_WASM")
#: The default thresholds and collection settings.
DEFAULT_CONFIG = ("layers/layer1_discovery/discovery.json", "CHIMERA_DISCOVERY_CONFIG")


def locate(artifact: tuple[str, str]) -> Path:
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


def _rlocation(path: str) -> str | None:
    try:
        from runfiles import Runfiles  # bazel-runfiles; absent outside Bazel is fine
    except ImportError:
        return None
    rf = Runfiles.Create()
    loc = rf.Rlocation(path) if rf is not None else None
    return str(loc) if loc else None
