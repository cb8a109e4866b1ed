"""The metric names the code registers, read from the sources (no server started):
every ``<registry>.counter|gauge|histogram("<name>", ...)`` call with a literal name.
A histogram exports ``_bucket``, ``_sum`` and ``_count`` series."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

_KINDS = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
_SELECTOR_NAME = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")
# The framework registers these for every server (interceptors/rpc_metrics.py).
FRAMEWORK = "framework"


def registered(source: str) -> set[str]:
    """Series names registered by the calls in one Python source."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        suffixes = _KINDS.get(node.func.attr)
        if suffixes is None or not node.args:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and not _is_docstring_example(first.value):
            names.update(first.value + suffix for suffix in suffixes)
    return names


def _is_docstring_example(name: str) -> bool:
    return not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", name)


def by_owner(files: Iterable[Path], root: Path) -> dict[str, set[str]]:
    """owner -> series names; owner is the layer directory (``layer4_execution``) for
    files under ``layers/``, FRAMEWORK for ``py/chimera/framework``."""
    owners: dict[str, set[str]] = {}
    for path in files:
        parts = path.relative_to(root).parts
        if parts[:1] == ("layers",) and len(parts) > 1:
            owner = parts[1]
        elif parts[:3] == ("py", "chimera", "framework"):
            owner = FRAMEWORK
        else:
            continue
        owners.setdefault(owner, set()).update(registered(path.read_text()))
    return owners


def selector_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (every selector here carries labels)."""
    return set(_SELECTOR_NAME.findall(expr))
