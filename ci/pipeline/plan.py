"""Which layer jobs a change needs: the layers whose targets depend on a changed file.

Until the release tool's `affected` command exists, the affected targets come from
`bazel query "rdeps(//..., set(<changed files>))"`; a change to a file Bazel reads
for every target (WORKSPACE, .bazelrc, third_party/, tools/) selects every layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

# Files every target depends on without a query edge to them.
GLOBAL_PREFIXES: tuple[str, ...] = (
    "WORKSPACE",
    "MODULE.bazel",
    ".bazelrc",
    "BUILD",
    "third_party/",
    "tools/",
)

_LAYER_LABEL = re.compile(r"^//layers/(layer\d+_[A-Za-z0-9_]+)[/:]")
_LAYER_DIR = re.compile(r"^layer\d+_[A-Za-z0-9_]+$")


def layer_packages(workspace: Path) -> list[str]:
    """Layer directories present in the tree, e.g. `layer1_discovery`, in order."""
    layers_dir = workspace / "layers"
    found = [p.name for p in layers_dir.iterdir() if p.is_dir() and _LAYER_DIR.match(p.name)]
    return sorted(found, key=layer_number)


def layer_number(name: str) -> int:
    """`layer12_x` -> 12."""
    match = re.match(r"^layer(\d+)_", name)
    if match is None:
        raise ValueError(f"not a layer directory: {name!r}")
    return int(match.group(1))


def is_global(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in GLOBAL_PREFIXES)


def query_expression(changed: Iterable[str]) -> str:
    """The rdeps query for the changed files that lie in a Bazel package."""
    files = " ".join(sorted(set(changed)))
    return f"rdeps(//..., set({files}))"


def layers_of_targets(labels: Iterable[str], known: Sequence[str]) -> list[str]:
    """Layer directories owning any of the labels, in layer order."""
    hit = {m.group(1) for label in labels if (m := _LAYER_LABEL.match(label))}
    return [layer for layer in known if layer in hit]


def select_layers(changed: Sequence[str] | None, affected_labels: Iterable[str], known: Sequence[str]) -> list[str]:
    """Layers a change needs. `changed=None` means "no base to compare": all layers."""
    if changed is None or any(is_global(path) for path in changed):
        return list(known)
    return layers_of_targets(affected_labels, known)
