"""Which part of the monorepo a label belongs to (mirrors private/layer.bzl)."""

from __future__ import annotations

import re

# The eight layers of the seed schema, in order.
LAYERS: tuple[str, ...] = tuple(f"layer{n}" for n in range(1, 9))

_LABEL = re.compile(r"^(?:@(?P<repo>[^/]*))?//(?P<package>[^:]*)(?::(?P<name>.*))?$")


def layer_of(label: str) -> str:
    """"layerN" for //layers/layerN_name/..., the top directory for other packages,
    "root" for the root package, "external" for other repositories, "" for no label."""
    match = _LABEL.match(label)
    if not match:
        return ""
    repo = match.group("repo")
    if repo and repo != "chimera":
        return "external"
    parts = [p for p in match.group("package").split("/") if p]
    if not parts:
        return "root"
    if parts[0] == "layers" and len(parts) > 1:
        head = parts[1].split("_")[0]
        if head.startswith("layer") and head[len("layer"):].isdigit():
            return head
        return "layers"
    return parts[0]


def group_order(name: str) -> tuple[int, int, str]:
    """Sort key: layer1..layerN first in numeric order, then other groups by name."""
    if name.startswith("layer") and name[len("layer"):].isdigit():
        return (0, int(name[len("layer"):]), name)
    return (1, 0, name)
