"""Targets affected between two snapshots, each with the chain of reasons why."""

from __future__ import annotations

import time
from typing import Any

from chimera_release import flags as flags_lib
from chimera_release.gitrepo import Revision
from chimera_release.snapshot import SnapshotStore, fill_digests, label_package, label_path

SCHEMA = "chimera.release.affected/v1"


class _Diff:
    def __init__(self, base: dict[str, Any], head: dict[str, Any]) -> None:
        self.base = base
        self.head = head
        self.base_targets: dict[str, Any] = base["targets"]
        self.head_targets: dict[str, Any] = head["targets"]
        self.changed_bzl = sorted(
            label for label in set(base["bzl"]) | set(head["bzl"])
            if base["bzl"].get(label) != head["bzl"].get(label)
        )
        self._direct: dict[str, list[str]] = {}

    def changed(self, label: str) -> bool:
        old, new = self.base_targets.get(label), self.head_targets.get(label)
        return old is None or new is None or old["d"] != new["d"]

    def _changed_loads(self, label: str) -> list[str]:
        package = label_package(label)
        loaded = set(self.head["loads"].get(package, [])) | set(self.base["loads"].get(package, []))
        return [bzl for bzl in self.changed_bzl if bzl in loaded]

    def _action_reasons(self, label: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
        before, after = old.get("actions", {}), new.get("actions", {})
        names = sorted(n for n in set(before) | set(after) if before.get(n) != after.get(n))
        flags = ", ".join(flags_lib.changed(self.base["flags"], self.head["flags"])) or "the flags"
        shown = "; ".join(names[:3]) + (f"; and {len(names) - 3} more" if len(names) > 3 else "")
        return [f"{flags} changed: reaches the {shown} action{'s' if len(names) > 1 else ''} of {label}"]

    def _repository_reasons(self, name: str, toolchain: bool) -> list[str]:
        old = self.base["repositories"].get(name, {"attrs": {}})["attrs"]
        new = self.head["repositories"].get(name, {"attrs": {}})["attrs"]
        kind = "toolchain" if toolchain else "repository"
        reasons = [f"{kind} {name} {attr} {old.get(attr, '(unset)')} → {new.get(attr, '(unset)')}"
                   for attr in sorted(set(old) | set(new)) if attr != "$rule_implementation_hash"
                   and old.get(attr) != new.get(attr)]
        if old.get("$rule_implementation_hash") != new.get("$rule_implementation_hash"):
            reasons.append(f"{kind} {name}: its repository rule's implementation changed")
        return reasons or [f"{kind} {name} added or removed"]

    def direct_reasons(self, label: str) -> list[str]:
        """What changed in the target itself (not in its dependencies)."""
        if label in self._direct:
            return self._direct[label]
        old, new = self.base_targets.get(label), self.head_targets.get(label)
        if old is None:
            reasons = ["new target"]
        elif new is None:
            reasons = ["deleted"]
        else:
            reasons = []
            for component in sorted(set(old["own"]) | set(new["own"])):
                if old["own"].get(component) != new["own"].get(component):
                    reasons.extend(self._component_reasons(label, component, old, new))
        self._direct[label] = reasons
        return reasons

    def _component_reasons(self, label: str, component: str, old: dict[str, Any], new: dict[str, Any]) -> list[str]:
        if component == "source":
            return [f"source file {label_path(label)} changed"]
        if component == "class":
            return [f"rule class of {label} changed: {old['own'].get('class')} → {new['own'].get('class')}"]
        if component.startswith("attr:"):
            name = component[5:]
            text = f"attribute {name} of {label} changed"
            macros = self._changed_loads(label) if (old.get("macro") or new.get("macro")) else []
            return [f"macro {bzl} changed: {text}" for bzl in macros] or [text]
        if component == "impl":
            files = self._changed_loads(label)
            where = f" ({', '.join(files)} changed)" if files else ""
            return [f"rule {new['own'].get('class')} changed{where}"]
        if component == "actions":
            return self._action_reasons(label, old, new)
        if component == "toolchains":
            names = sorted(set(self.base["toolchains"]) | set(self.head["toolchains"]))
            changed = [n for n in names if self.base["repositories"].get(n) != self.head["repositories"].get(n)]
            return [r for n in changed for r in self._repository_reasons(n, toolchain=True)]
        if component == "wheel":
            repository, name = new.get("wheel") or old.get("wheel")
            before = self.base["wheels"].get(repository, {}).get(name, {}).get("version", "(absent)")
            after = self.head["wheels"].get(repository, {}).get(name, {}).get("version", "(absent)")
            if before == after:
                return [f"locked wheel {name} {before}: hashes changed"]
            return [f"locked wheel {name} {before} → {after}"]
        if component == "repository":
            name = new.get("repository") or old.get("repository")
            toolchain = name in self.head["toolchains"] or name in self.base["toolchains"]
            return self._repository_reasons(name, toolchain=toolchain)
        return [f"{component} of {label} changed"]

    def changed_inputs(self, label: str) -> list[str]:
        old, new = self.base_targets.get(label), self.head_targets.get(label)
        if old is None or new is None:
            return []
        inputs = set(old["in"]) | set(new["in"])
        return sorted(i for i in inputs if self.changed(i))

    def chain(self, label: str) -> list[dict[str, Any]]:
        """From the target down to a root cause, following the first changed input."""
        steps: list[dict[str, Any]] = []
        seen: set[str] = set()
        current: str | None = label
        while current is not None and current not in seen:
            seen.add(current)
            reasons = self.direct_reasons(current)
            inputs = self.changed_inputs(current)
            step: dict[str, Any] = {"label": current, "reasons": reasons}
            if inputs:
                step["changed_inputs"] = inputs
            steps.append(step)
            if reasons:
                break
            current = _root_first(inputs, self)
        return steps


def _root_first(inputs: list[str], diff: _Diff) -> str | None:
    """Prefers an input whose own change explains it (shortest chains first)."""
    for label in inputs:
        if diff.direct_reasons(label):
            return label
    return inputs[0] if inputs else None


def _reason_lines(steps: list[dict[str, Any]]) -> list[str]:
    lines = []
    for index, step in enumerate(steps):
        if index + 1 < len(steps):
            lines.append(f"{step['label']} depends on {steps[index + 1]['label']}")
        lines.extend(step["reasons"])
    return lines


def layer_of(label: str) -> str | None:
    parts = label.lstrip("/").split("/")
    return parts[1].split(":")[0] if len(parts) > 1 and parts[0] == "layers" else None


def with_actions(snapshot: dict[str, Any], actions: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A copy of `snapshot` whose digests also cover each target's configured action keys."""
    targets = {}
    for label, node in snapshot["targets"].items():
        node = {key: value for key, value in node.items() if key != "d"}
        keys = actions.get(label)
        if keys:
            node["own"] = {**node["own"], "actions": flags_lib.digest(keys)}
            node["actions"] = keys
        targets[label] = node
    fill_digests(targets)
    return {**snapshot, "targets": targets}


def affected(base: dict[str, Any], head: dict[str, Any],
             actions: tuple[dict[str, Any], dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every main-repository rule whose digest differs, with its reason chain.

    `actions` (base's and head's action keys per label) are given when the
    revisions' flags differ: a flag then reaches exactly the targets whose
    actions it changes, and what depends on them.
    """
    if actions is not None:
        base, head = with_actions(base, actions[0]), with_actions(head, actions[1])
    diff = _Diff(base, head)
    rules = {label for label, node in head["targets"].items() if node["k"] == "rule"}
    rules |= {label for label, node in base["targets"].items() if node["k"] == "rule"}
    result = []
    for label in sorted(rules):
        if not diff.changed(label):
            continue
        node = head["targets"].get(label) or base["targets"][label]
        steps = diff.chain(label)
        result.append({
            "label": label,
            "kind": node["own"].get("class", ""),
            "status": "new" if label not in base["targets"] else "deleted" if label not in head["targets"] else "changed",
            "reasons": _reason_lines(steps),
            "chain": steps,
        })
    return result


def between(store: SnapshotStore, base_revision: Revision, head_revision: Revision
            ) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(base snapshot, head snapshot, affected targets, timing): the one way every command diffs revisions.

    Bazel's action graph is read only when the revisions' flags differ.
    """
    started = time.monotonic()
    base, base_cached = store.get(base_revision)
    head, head_cached = store.get(head_revision)
    changed_flags = flags_lib.changed(base["flags"], head["flags"])
    actions = None
    if changed_flags:
        actions = (store.actions(base_revision, base["flags"]), store.actions(head_revision, head["flags"]))
    targets = affected(base, head, actions)
    timing = {"seconds": round(time.monotonic() - started, 3), "base_cached": base_cached,
              "head_cached": head_cached, "changed_flags": changed_flags}
    return base, head, targets, timing


def report(base_revision: dict[str, Any], head_revision: dict[str, Any], targets: list[dict[str, Any]],
           timings: dict[str, Any]) -> dict[str, Any]:
    layers = sorted({layer for t in targets if (layer := layer_of(t["label"]))})
    return {
        "schema": SCHEMA,
        "base": base_revision,
        "head": head_revision,
        "affected": targets,
        "count": len(targets),
        # What is no longer built: the release's deltas and the deploy plan tear these down.
        "removed": [t["label"] for t in targets if t["status"] == "deleted"],
        "layers": layers,
        "timing": timings,
    }
