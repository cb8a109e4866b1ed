"""A revision's build graph, the targets two revisions' graphs disagree on, and queries over it.

- build.proto decoding: `bazel query --output=streamed_proto` without generated code;
- snapshots: the graph with a Merkle digest per target, cached by git tree;
- affected: the targets whose digests differ between two snapshots, each with
  the chain of reasons why;
- deliverables: which targets a release ships;
- graph queries: deliverables per layer, deps, rdeps and tests of a target.

Standard library only: CI runs `affected` as a plain script.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import marshal
import os
import pathlib
import sys
import time
from collections import defaultdict
from typing import Any, Iterator

from chimera_release.errors import UsageError
from chimera_release.workspace import (
    ACTION_GRAPH_QUERY,
    Bazel,
    GitRepo,
    Revision,
    action_keys,
    actions_digest,
    changed_flags,
    lock_requirements,
    normalize_project,
    parse_flags,
    parse_lock,
    test_arguments,
)

# ---------------------------------------------------------------------------
# Decoding `bazel query --output=streamed_proto`
#
# The stream is a sequence of varint-length-delimited `blaze_query.Target`
# messages (src/main/protobuf/build.proto). Only the fields the release tool
# reads are decoded; field numbers are build.proto's, stable since Bazel 0.x.

# build.proto field numbers.
_TARGET_TYPE, _TARGET_RULE, _TARGET_SOURCE, _TARGET_GENERATED = 1, 2, 3, 4
_RULE_NAME, _RULE_CLASS, _RULE_ATTRIBUTE, _RULE_INPUT, _RULE_OUTPUT = 1, 2, 4, 5, 6
_ATTR_NAME, _ATTR_TYPE, _ATTR_INT, _ATTR_STRING, _ATTR_STRING_LIST = 1, 2, 3, 5, 6
_ATTR_LOCATION, _ATTR_BOOL = 12, 14
_SOURCE_NAME, _SOURCE_SUBINCLUDE = 1, 3
_GENERATED_NAME, _GENERATED_RULE = 1, 2
_WIRE_VARINT, _WIRE_FIXED64, _WIRE_BYTES, _WIRE_FIXED32 = 0, 1, 2, 5


@dataclasses.dataclass
class Attribute:
    name: str
    value: bytes  # the attribute message minus any location: a stable value encoding


@dataclasses.dataclass
class Rule:
    name: str
    rule_class: str
    attributes: list[Attribute]
    inputs: list[str]
    outputs: list[str]


@dataclasses.dataclass
class SourceFile:
    name: str
    subincludes: list[str]  # for a BUILD file: the .bzl files its package loads


@dataclasses.dataclass
class GeneratedFile:
    name: str
    generating_rule: str


Target = Rule | SourceFile | GeneratedFile


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def proto_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yields (field number, wire type, value) for each field of one message."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _WIRE_VARINT:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == _WIRE_BYTES:
            length, pos = _varint(data, pos)
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == _WIRE_FIXED64:
            yield number, wire, data[pos : pos + 8]
            pos += 8
        elif wire == _WIRE_FIXED32:
            yield number, wire, data[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _attribute(data: bytes) -> Attribute:
    # Fast path (every attribute, in practice): Bazel writes the name first, and
    # workspace.QUERY_FLAGS has --noproto:locations, so the message holds no
    # location to strip and its bytes are a stable encoding of the value.
    if data[:1] == b"\x0a" and data[1] < 0x80:
        return Attribute(name=data[2 : 2 + data[1]].decode(), value=data)
    return _attribute_slow(data)


def _attribute_slow(data: bytes) -> Attribute:
    name = ""
    kept = bytearray()
    pos, end = 0, len(data)
    while pos < end:
        start = pos
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _WIRE_VARINT:
            value, pos = _varint(data, pos)
        elif wire == _WIRE_BYTES:
            length, pos = _varint(data, pos)
            value = data[pos : pos + length]
            pos += length
        else:
            pos += 8 if wire == _WIRE_FIXED64 else 4
            value = None
        if number == _ATTR_NAME:
            name = value.decode()
        if number != _ATTR_LOCATION:
            kept += data[start:pos]
    return Attribute(name=name, value=bytes(kept))


def _rule(data: bytes) -> Rule:
    rule = Rule(name="", rule_class="", attributes=[], inputs=[], outputs=[])
    for number, _, value in proto_fields(data):
        if number == _RULE_NAME:
            rule.name = value.decode()
        elif number == _RULE_CLASS:
            rule.rule_class = value.decode()
        elif number == _RULE_ATTRIBUTE:
            rule.attributes.append(_attribute(value))
        elif number == _RULE_INPUT:
            rule.inputs.append(value.decode())
        elif number == _RULE_OUTPUT:
            rule.outputs.append(value.decode())
    return rule


def _source_file(data: bytes) -> SourceFile:
    source = SourceFile(name="", subincludes=[])
    for number, _, value in proto_fields(data):
        if number == _SOURCE_NAME:
            source.name = value.decode()
        elif number == _SOURCE_SUBINCLUDE:
            source.subincludes.append(value.decode())
    return source


def _generated_file(data: bytes) -> GeneratedFile:
    generated = GeneratedFile(name="", generating_rule="")
    for number, _, value in proto_fields(data):
        if number == _GENERATED_NAME:
            generated.name = value.decode()
        elif number == _GENERATED_RULE:
            generated.generating_rule = value.decode()
    return generated


def _target(data: bytes) -> Target | None:
    for number, _, value in proto_fields(data):
        if number == _TARGET_RULE:
            return _rule(value)
        if number == _TARGET_SOURCE:
            return _source_file(value)
        if number == _TARGET_GENERATED:
            return _generated_file(value)
    return None  # package and environment groups carry nothing to hash


def attribute_text(attribute: Attribute) -> str:
    """A short human rendering of an attribute's value (for reason messages)."""
    scalars: list[str] = []
    items: list[str] = []
    for number, wire, value in proto_fields(attribute.value):
        if number in (_ATTR_INT, _ATTR_BOOL) and not isinstance(value, bytes):
            scalars.append(str(value))
        elif number == _ATTR_STRING and isinstance(value, bytes):
            return value.decode(errors="replace")
        elif number == _ATTR_STRING_LIST and isinstance(value, bytes):
            items.append(value.decode(errors="replace"))
        elif number not in (_ATTR_NAME, _ATTR_TYPE) and isinstance(value, bytes):
            items.append(value.hex()[:16])
    if items:
        return "[" + ", ".join(items) + "]"
    return scalars[-1] if scalars else ""


def read_query_stream(data: bytes) -> Iterator[Target]:
    """Yields the targets of a streamed_proto query result."""
    pos, end = 0, len(data)
    while pos < end:
        length, pos = _varint(data, pos)
        target = _target(data[pos : pos + length])
        pos += length
        if target is not None:
            yield target


# ---------------------------------------------------------------------------
# Snapshots
#
# A target's digest covers its own inputs (rule class, every attribute value,
# the implementation hash of its Starlark rule, the pinned toolchains; a source
# file's content; an external label's repository rule, or a locked wheel's pin
# and the wheels it requires) and the digests of everything it depends on.
# Build flags are not in it: their reach comes from Bazel's action keys (with_actions).
# The per-component digests are kept so that a diff can say *why*.

SNAPSHOT_SCHEMA = 6  # bump when the snapshot format or the digest algorithm changes
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


def _repository_view(rule: Rule) -> dict[str, str]:
    return {
        a.name: attribute_text(a)
        for a in rule.attributes
        if a.name not in _IGNORED_ATTRIBUTES and a.name not in ("generator_function", "generator_name")
    }


class _Builder:
    """Turns one query result and the tree's file digests into a snapshot."""

    def __init__(self, repo: GitRepo, revision: Revision, targets: list[Target]) -> None:
        self.repo = repo
        self.revision = revision
        self.files = repo.file_digests(revision.tree)
        self.targets = targets

    def _read(self, path: str) -> bytes | None:
        return self.repo.read(self.revision.tree, path)

    def build(self) -> dict[str, Any]:
        rules = [t for t in self.targets if isinstance(t, Rule)]
        repositories = {r.name.split(":", 1)[1]: r for r in rules if r.name.startswith("//external:")}
        repo_views = {name: {"class": r.rule_class, "attrs": _repository_view(r)} for name, r in repositories.items()}
        wheels: dict[str, dict[str, dict[str, str]]] = {}
        for name, view in repo_views.items():
            lock_label = view["attrs"].get("requirements_lock")
            if lock_label:
                content = self._read(label_path(lock_label)) or b""
                pins = parse_lock(content.decode(errors="replace"))
                requires = lock_requirements(pins)
                wheels[name] = {p.name: {"version": p.version, "digest": p.digest, "requires": requires[p.name]}
                                for p in pins.values()}
        toolchains = {n: v for n, v in repo_views.items() if "toolchain" in v["class"]}
        flags = parse_flags(self._read)
        # Flags are not hashed into every rule: their reach is measured from
        # Bazel's action keys, and only when two revisions' flags differ (with_actions).
        config = {"toolchains": _digest(json.dumps(toolchains, sort_keys=True))}
        loads: dict[str, list[str]] = {}
        nodes: dict[str, dict[str, Any]] = {}
        for target in self.targets:
            if target.name.startswith("//external:"):
                continue
            if isinstance(target, Rule):
                nodes[target.name] = self._rule_node(target, config)
            elif isinstance(target, SourceFile):
                if target.subincludes:
                    loads[label_package(target.name)] = sorted(target.subincludes)
                path = label_path(target.name)
                nodes[target.name] = {"k": "source", "own": {"source": self.files.get(path, "missing")}, "in": []}
            elif isinstance(target, GeneratedFile):
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
            "schema": SNAPSHOT_SCHEMA,
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
    def _rule_node(rule: Rule, config: dict[str, str]) -> dict[str, Any]:
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
            name = normalize_project(label.rsplit(":", 1)[-1])
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


_CHECKSUM_BYTES = 32  # a cache entry starts with the sha256 of the rest


def _rebuilding(path: pathlib.Path, problem: str) -> None:
    print(f"release: cache entry {path} {problem}; rebuilding it", file=sys.stderr)
    return None


class SnapshotStore:
    """Computes snapshots with Bazel and caches them by tree hash."""

    def __init__(self, repo: GitRepo, bazel: Bazel, cache_dir: pathlib.Path) -> None:
        if cache_dir.exists() and not cache_dir.is_dir():
            raise UsageError(f"--cache-dir {cache_dir}: not a directory")
        self.repo = repo
        self.bazel = bazel
        self.cache_dir = cache_dir
        identity = bazel.identity()
        self.checkout = cache_dir / "checkouts" / _digest(str(repo.root), identity)
        self.snapshots = cache_dir / "snapshots" / _digest(identity, str(SNAPSHOT_SCHEMA), sys.version)

    def get(self, revision: Revision) -> tuple[dict[str, Any], bool]:
        """(snapshot, whether it came from the cache)."""
        cached = self.snapshots / f"{revision.tree}.marshal"
        snapshot = self._load(cached, revision, "targets")
        if snapshot is not None:
            return snapshot, True
        workspace = self.export(revision)
        targets = list(read_query_stream(self.bazel.query_graph(workspace)))
        snapshot = _Builder(self.repo, revision, targets).build()
        self._store(cached, snapshot)
        return snapshot, False

    def actions(self, revision: Revision, flags: dict[str, dict[str, list[str]]]) -> dict[str, str]:
        """label -> digest of its configured action keys at `revision` (cached like snapshots).

        Only called when two revisions' flags differ, so the common case never
        analyses anything.
        """
        cached = self.snapshots / f"{revision.tree}.actions.marshal"
        actions = self._load(cached, revision, "actions")
        if actions is not None:
            return actions["actions"]
        workspace = self.export(revision)
        document = self.bazel.aquery(workspace, ACTION_GRAPH_QUERY, test_arguments(flags))
        keys = action_keys(document)
        actions = {"schema": SNAPSHOT_SCHEMA, "tree": revision.tree, "actions": keys}
        self._store(cached, actions)
        return keys

    @staticmethod
    def _load(path: pathlib.Path, revision: Revision, content: str) -> dict[str, Any] | None:
        """A cache entry, or None when it is absent or unusable (then it is rebuilt, never trusted).

        An entry is the sha256 of its payload, then the payload: a byte flipped
        anywhere is caught even where the payload would still unmarshal.
        """
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            return _rebuilding(path, f"cannot be read ({error.strerror})")
        checksum, payload = data[:_CHECKSUM_BYTES], data[_CHECKSUM_BYTES:]
        if hashlib.sha256(payload).digest() != checksum:
            return _rebuilding(path, "is corrupt")
        try:
            # marshal: plain dicts/lists/strings, ~4x faster to load than JSON, and
            # unlike pickle it cannot run code; its format is keyed by Python version.
            entry = marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            return _rebuilding(path, "is corrupt")
        if not isinstance(entry, dict) or not isinstance(entry.get(content), dict):
            return _rebuilding(path, "is corrupt")
        if entry.get("schema") != SNAPSHOT_SCHEMA or entry.get("tree") != revision.tree:
            return _rebuilding(path, "does not match its revision")
        return entry

    def _store(self, path: pathlib.Path, entry: dict[str, Any]) -> None:
        payload = marshal.dumps(entry)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            self.snapshots.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(hashlib.sha256(payload).digest() + payload)
            partial.replace(path)  # atomic: a reader sees the old entry or the new one, never a part
        except OSError as error:
            raise UsageError(f"--cache-dir {self.cache_dir}: cannot write {path.name}: {error.strerror}") from None

    def export(self, revision: Revision) -> pathlib.Path:
        """The revision's files at the fixed checkout path (one Bazel server for all revisions)."""
        workspace = self.checkout / "src"
        try:
            self.checkout.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"--cache-dir {self.cache_dir}: cannot create {self.checkout}: {error.strerror}") from None
        self.repo.export(revision.tree, workspace, self.checkout / "index")
        return workspace

    def shutdown(self) -> None:
        self.bazel.shutdown(self.checkout / "src")


# ---------------------------------------------------------------------------
# Affected targets, each with the chain of reasons why

AFFECTED_SCHEMA = "chimera.release.affected/v1"


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
        flags = ", ".join(changed_flags(self.base["flags"], self.head["flags"])) or "the flags"
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
            node["own"] = {**node["own"], "actions": actions_digest(keys)}
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
    flags_changed = changed_flags(base["flags"], head["flags"])
    actions = None
    if flags_changed:
        actions = (store.actions(base_revision, base["flags"]), store.actions(head_revision, head["flags"]))
    targets = affected(base, head, actions)
    timing = {"seconds": round(time.monotonic() - started, 3), "base_cached": base_cached,
              "head_cached": head_cached, "changed_flags": flags_changed}
    return base, head, targets, timing


def affected_report(base_revision: dict[str, Any], head_revision: dict[str, Any], targets: list[dict[str, Any]],
           timings: dict[str, Any]) -> dict[str, Any]:
    layers = sorted({layer for t in targets if (layer := layer_of(t["label"]))})
    return {
        "schema": AFFECTED_SCHEMA,
        "base": base_revision,
        "head": head_revision,
        "affected": targets,
        "count": len(targets),
        # What is no longer built: the release's deltas and the deploy plan tear these down.
        "removed": [t["label"] for t in targets if t["status"] == "deleted"],
        "layers": layers,
        "timing": timings,
    }


# ---------------------------------------------------------------------------
# Deliverables
#
# Servers are the `server` py_binary of each layer package (so new layers are
# picked up without code changes); WASM modules, native libraries and OCI images
# (//tools/oci, one per layer server) are recognised by rule class. An image
# belongs to the layer of the server it packages.

WASM_CLASSES = {"rust_wasm_module"}
NATIVE_LIBRARY_CLASSES = {"rust_library", "rust_shared_library", "rust_static_library", "cc_library"}
IMAGE_CLASSES = {"oci_image"}


@dataclasses.dataclass(frozen=True)
class Deliverable:
    label: str
    kind: str  # "service" | "wasm" | "native_library" | "image"
    rule_class: str
    layer: str  # "layerN_name", or "shared" outside //layers

    def as_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def classify(label: str, rule_class: str) -> str | None:
    name = label.rsplit(":", 1)[-1]
    if rule_class in IMAGE_CLASSES:  # built by tools/oci, yet a layer's deliverable
        return "image"
    if label.startswith("//tools/"):  # the build's own tooling and its test fixtures
        return None
    if rule_class == "py_binary" and name == "server" and label.startswith("//layers/"):
        return "service"
    if rule_class in WASM_CLASSES:
        return "wasm"
    if rule_class in NATIVE_LIBRARY_CLASSES:
        return "native_library"
    return None


def deliverables(snapshot: dict[str, Any]) -> list[Deliverable]:
    found = []
    for label, node in sorted(snapshot["targets"].items()):
        if node["k"] != "rule":
            continue
        kind = classify(label, node["own"].get("class", ""))
        if kind is None:
            continue
        layer = layer_of(label)
        if kind == "image":  # the layer of the server it packages
            layer = next((layer_of(i) for i in node["in"] if layer_of(i)), None)
        found.append(Deliverable(label=label, kind=kind, rule_class=node["own"]["class"], layer=layer or "shared"))
    return found


# ---------------------------------------------------------------------------
# Graph queries: deliverables per layer, deps, rdeps and tests of a target

GRAPH_SCHEMA = "chimera.release.graph/v1"


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


def graph_query(snapshot: dict[str, Any], what: str, label: str | None) -> dict[str, Any]:
    if what == "deliverables":
        per_layer: dict[str, list[dict[str, str]]] = defaultdict(list)
        for deliverable in deliverables(snapshot):
            per_layer[deliverable.layer].append(deliverable.as_json())
        return {"schema": GRAPH_SCHEMA, "query": what, "layers": dict(sorted(per_layer.items()))}
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
    return {"schema": GRAPH_SCHEMA, "query": what, "target": label, "targets": result, "count": len(result)}
