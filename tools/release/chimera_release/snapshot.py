"""A revision's build graph with a Merkle digest per target, cached by git tree.

A target's digest covers its own inputs (rule class, every attribute value,
the implementation hash of its Starlark rule, the pinned toolchains; a source
file's content; an external label's repository rule, or a locked wheel's pin
and the wheels it requires) and the digests of everything it depends on.
Build flags are not in it: their reach comes from Bazel's action keys (flags.py).
The per-component digests are kept so that a diff can say *why*.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import pathlib
import sys
from typing import Any

from chimera_release import flags as flags_lib
from chimera_release import lockfile, protowire
from chimera_release.bazel import Bazel
from chimera_release.gitrepo import GitRepo, Revision

SCHEMA = 5  # bump when the snapshot format or the digest algorithm changes
# Visibility only decides whether a build is allowed; it never changes an output.
_IGNORED_ATTRIBUTES = {"generator_location", "$internal_attr_hash", "visibility"}
_IMPLEMENTATION = "$rule_implementation_hash"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]


def label_repository(label: str) -> str:
    """"" for the main repository, else the repository name of an @repo label."""
    return label[1:].split("//", 1)[0] if label.startswith("@") else ""


def label_path(label: str) -> str:
    """The workspace-relative path of a main-repository file label."""
    package, _, name = label.lstrip("/").partition(":")
    return f"{package}/{name}" if package else name


def label_package(label: str) -> str:
    return label.split(":", 1)[0]


def _repository_view(rule: protowire.Rule) -> dict[str, str]:
    return {
        a.name: protowire.attribute_text(a)
        for a in rule.attributes
        if a.name not in _IGNORED_ATTRIBUTES and a.name not in ("generator_function", "generator_name")
    }


class _Builder:
    """Turns one query result and the tree's file digests into a snapshot."""

    def __init__(self, repo: GitRepo, revision: Revision, targets: list[protowire.Target]) -> None:
        self.repo = repo
        self.revision = revision
        self.files = repo.file_digests(revision.tree)
        self.targets = targets

    def _read(self, path: str) -> bytes | None:
        return self.repo.read(self.revision.tree, path)

    def build(self) -> dict[str, Any]:
        rules = [t for t in self.targets if isinstance(t, protowire.Rule)]
        repositories = {r.name.split(":", 1)[1]: r for r in rules if r.name.startswith("//external:")}
        repo_views = {name: {"class": r.rule_class, "attrs": _repository_view(r)} for name, r in repositories.items()}
        wheels: dict[str, dict[str, dict[str, str]]] = {}
        for name, view in repo_views.items():
            lock_label = view["attrs"].get("requirements_lock")
            if lock_label:
                content = self._read(label_path(lock_label)) or b""
                pins = lockfile.parse(content.decode(errors="replace"))
                requires = lockfile.requirements(pins)
                wheels[name] = {p.name: {"version": p.version, "digest": p.digest, "requires": requires[p.name]}
                                for p in pins.values()}
        toolchains = {n: v for n, v in repo_views.items() if "toolchain" in v["class"]}
        flags = flags_lib.parse(self._read)
        # Flags are not hashed into every rule: their reach is measured from
        # Bazel's action keys, and only when two revisions' flags differ (flags.py).
        config = {"toolchains": _digest(json.dumps(toolchains, sort_keys=True))}
        loads: dict[str, list[str]] = {}
        nodes: dict[str, dict[str, Any]] = {}
        for target in self.targets:
            if target.name.startswith("//external:"):
                continue
            if isinstance(target, protowire.Rule):
                nodes[target.name] = self._rule_node(target, config)
            elif isinstance(target, protowire.SourceFile):
                if target.subincludes:
                    loads[label_package(target.name)] = sorted(target.subincludes)
                path = label_path(target.name)
                nodes[target.name] = {"k": "source", "own": {"source": self.files.get(path, "missing")}, "in": []}
            elif isinstance(target, protowire.GeneratedFile):
                nodes[target.name] = {"k": "generated", "own": {}, "in": [target.generating_rule]}
        # Labels outside the main repository become leaves, except locked wheels:
        # those depend on the wheels they require, so a bump deep in the chain
        # reaches every target above it.
        pending = [label for node in nodes.values() for label in node["in"]]
        while pending:
            label = pending.pop()
            if label not in nodes:
                nodes[label] = self._outside_node(label, repo_views, wheels)
                pending.extend(nodes[label]["in"])
        bzl = {label: self.files.get(label_path(label), "missing")
               for labels in loads.values() for label in labels if not label.startswith("@")}
        fill_digests(nodes)
        return {
            "schema": SCHEMA,
            "tree": self.revision.tree,
            "targets": nodes,
            "loads": loads,
            "bzl": bzl,
            "flags": flags,
            "repositories": repo_views,
            "wheels": wheels,
            "toolchains": sorted(toolchains),
        }

    @staticmethod
    def _rule_node(rule: protowire.Rule, config: dict[str, str]) -> dict[str, Any]:
        own: dict[str, str] = {"class": rule.rule_class}
        macro = False
        for attribute in rule.attributes:
            if attribute.name in _IGNORED_ATTRIBUTES:
                continue
            if attribute.name == "generator_function":
                macro = True
            if attribute.name == _IMPLEMENTATION:
                own["impl"] = hashlib.sha256(attribute.value).hexdigest()[:20]
                own["toolchains"] = config["toolchains"]
            else:
                own["attr:" + attribute.name] = hashlib.sha256(attribute.value).hexdigest()[:20]
        node: dict[str, Any] = {"k": "rule", "own": own, "in": sorted(set(rule.inputs))}
        if macro:
            node["macro"] = True
        return node

    @staticmethod
    def _outside_node(label: str, repo_views: dict[str, Any], wheels: dict[str, Any]) -> dict[str, Any]:
        repository = label_repository(label)
        if repository in wheels:
            name = lockfile.normalize(label.rsplit(":", 1)[-1])
            pin = wheels[repository].get(name)
            if pin is not None:
                requires = [f"@{repository}//:{dep}" for dep in pin["requires"]]
                return {"k": "external", "own": {"wheel": pin["digest"]}, "in": requires, "wheel": [repository, name]}
        if repository in repo_views:
            view = json.dumps(repo_views[repository], sort_keys=True)
            return {"k": "external", "own": {"repository": _digest(view)}, "in": [], "repository": repository}
        # @bazel_tools and other built-in repositories are pinned by the Bazel
        # binary, which is part of the cache key; a missing main-repository
        # label (a dangling reference) is its own text.
        return {"k": "external" if repository else "missing", "own": {"label": label}, "in": []}


def fill_digests(nodes: dict[str, dict[str, Any]]) -> None:
    """Sets node["d"] bottom-up, iteratively (dependency chains can be long)."""
    for root in nodes:
        if "d" in nodes[root]:
            continue
        stack: list[tuple[str, bool]] = [(root, False)]
        on_path: set[str] = set()
        while stack:
            label, expanded = stack.pop()
            node = nodes[label]
            if "d" in node:
                continue
            if expanded:
                on_path.discard(label)
                own = _digest(*(f"{k}={v}" for k, v in sorted(node["own"].items())))
                inputs = (f"{i}={nodes[i].get('d', 'cycle')}" for i in node["in"])
                node["d"] = _digest(own, *inputs)
                continue
            on_path.add(label)
            stack.append((label, True))
            stack.extend((i, False) for i in node["in"] if "d" not in nodes[i] and i not in on_path)


class SnapshotStore:
    """Computes snapshots with Bazel and caches them by tree hash."""

    def __init__(self, repo: GitRepo, bazel: Bazel, cache_dir: pathlib.Path) -> None:
        self.repo = repo
        self.bazel = bazel
        self.cache_dir = cache_dir
        identity = bazel.identity()
        self.checkout = cache_dir / "checkouts" / _digest(str(repo.root), identity)
        self.snapshots = cache_dir / "snapshots" / _digest(identity, str(SCHEMA), sys.version)

    def get(self, revision: Revision) -> tuple[dict[str, Any], bool]:
        """(snapshot, whether it came from the cache)."""
        cached = self.snapshots / f"{revision.tree}.marshal"
        snapshot = self._load(cached, revision)
        if snapshot is not None and isinstance(snapshot.get("targets"), dict):
            return snapshot, True
        workspace = self.export(revision)
        targets = list(protowire.read_stream(self.bazel.query_graph(workspace)))
        snapshot = _Builder(self.repo, revision, targets).build()
        self._store(cached, snapshot)
        return snapshot, False

    def actions(self, revision: Revision, flags: dict[str, dict[str, list[str]]]) -> dict[str, str]:
        """label -> digest of its configured action keys at `revision` (cached like snapshots).

        Only called when two revisions' flags differ, so the common case never
        analyses anything.
        """
        cached = self.snapshots / f"{revision.tree}.actions.marshal"
        actions = self._load(cached, revision)
        if actions is not None and isinstance(actions.get("actions"), dict):
            return actions["actions"]
        workspace = self.export(revision)
        document = self.bazel.aquery(workspace, flags_lib.ALL_TARGETS, flags_lib.test_arguments(flags))
        keys = flags_lib.action_keys(document)
        actions = {"schema": SCHEMA, "tree": revision.tree, "actions": keys}
        self._store(cached, actions)
        return keys

    @staticmethod
    def _load(path: pathlib.Path, revision: Revision) -> dict[str, Any] | None:
        """A cache entry, or None when it is absent or unusable (then it is rebuilt, never trusted)."""
        try:
            # marshal: plain dicts/lists/strings, ~4x faster to load than JSON, and
            # unlike pickle it cannot run code; its format is keyed by Python version.
            entry = marshal.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, EOFError, ValueError, TypeError):
            print(f"release: cache entry {path} is corrupt; rebuilding it", file=sys.stderr)
            return None
        if not isinstance(entry, dict) or entry.get("schema") != SCHEMA or entry.get("tree") != revision.tree:
            print(f"release: cache entry {path} does not match its revision; rebuilding it", file=sys.stderr)
            return None
        return entry

    def _store(self, path: pathlib.Path, entry: dict[str, Any]) -> None:
        self.snapshots.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(marshal.dumps(entry))
        partial.replace(path)

    def export(self, revision: Revision) -> pathlib.Path:
        """The revision's files at the fixed checkout path (one Bazel server for all revisions)."""
        workspace = self.checkout / "src"
        self.checkout.mkdir(parents=True, exist_ok=True)
        self.repo.export(revision.tree, workspace, self.checkout / "index")
        return workspace

    def shutdown(self) -> None:
        self.bazel.shutdown(self.checkout / "src")
