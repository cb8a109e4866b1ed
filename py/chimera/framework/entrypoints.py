"""What the command-line entry points (main job, closed loop) share.

``json_safe`` makes a summary JSON-serialisable (JSON has no NaN);
``from_working_directory`` resolves path flags the way a user means them under
``bazel run``, which starts binaries inside their runfiles.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["from_working_directory", "json_safe"]


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def from_working_directory(args: argparse.Namespace, names: Iterable[str]) -> None:
    """Makes the relative ``Path`` flags ``names`` relative to the caller's directory.

    ``bazel run`` starts a binary in its runfiles and names the directory it was
    called from in ``BUILD_WORKING_DIRECTORY``; without it, the current one.
    """
    base = Path(os.environ.get("BUILD_WORKING_DIRECTORY", "."))
    for name in names:
        path = getattr(args, name)
        if path is not None and not path.is_absolute():
            setattr(args, name, base / path)
