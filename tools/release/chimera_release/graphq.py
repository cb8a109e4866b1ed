"""`graph`: deliverables per layer, dependencies, reverse dependencies and tests of a target."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from chimera_release.deliverables import deliverables
from chimera_release.errors import UsageError

SCHEMA = "chimera.release.graph/v1"


def _rules(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {label: node for label, node in snapshot["targets"].items() if node["k"] == "rule"}


def _owner(snapshot: dict[str, Any], label: str) -> str:
    """A generated file stands for the rule that generates it."""
    node = snapshot["targets"].get(label)
    if node is not None and node["k"] == "generated":
        return node["in"][0]
    return label


def transitive_deps(snapshot: dict[str, Any], label: str) -> list[str]:
    targets = snapshot["targets"]
    seen: set[str] = set()
    stack = list(targets[label]["in"])
    while stack:
        current = stack.pop()
        if current in seen or current not in targets:
            continue
        seen.add(current)
        stack.extend(targets[current]["in"])
    return sorted(_owner(snapshot, d) for d in seen if targets[d]["k"] in ("rule", "generated") and d != label
                  and _owner(snapshot, d) != label)


def reverse_deps(snapshot: dict[str, Any], label: str) -> list[str]:
    dependents: dict[str, list[str]] = defaultdict(list)
    for name, node in snapshot["targets"].items():
        for dep in node["in"]:
            dependents[dep].append(name)
    seen: set[str] = set()
    stack = list(dependents[label])
    for node_label in [n for n, node in snapshot["targets"].items() if node["k"] == "generated" and node["in"] == [label]]:
        stack.extend(dependents[node_label])
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        stack.extend(dependents[current])
    rules = _rules(snapshot)
    return sorted({_owner(snapshot, r) for r in seen} & set(rules) - {label})


def query(snapshot: dict[str, Any], what: str, label: str | None) -> dict[str, Any]:
    if what == "deliverables":
        per_layer: dict[str, list[dict[str, str]]] = defaultdict(list)
        for deliverable in deliverables(snapshot):
            per_layer[deliverable.layer].append(deliverable.as_json())
        return {"schema": SCHEMA, "query": what, "layers": dict(sorted(per_layer.items()))}
    if label is None:
        raise UsageError(f"graph {what} needs a target label")
    if label not in snapshot["targets"]:
        raise UsageError(f"graph {what}: no target {label} in the graph")
    if what == "deps":
        result = transitive_deps(snapshot, label)
    elif what == "rdeps":
        result = reverse_deps(snapshot, label)
    else:  # tests
        rules = _rules(snapshot)
        result = [r for r in reverse_deps(snapshot, label) if rules[r]["own"].get("class", "").endswith("_test")]
        if rules.get(label, {}).get("own", {}).get("class", "").endswith("_test"):
            result = sorted({label, *result})
    return {"schema": SCHEMA, "query": what, "target": label, "targets": result, "count": len(result)}
