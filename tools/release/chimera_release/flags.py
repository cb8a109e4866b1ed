"""Build flags: a revision's .bazelrc, and the reach of a change to it measured by Bazel.

`common`/`build` lines apply to every build, `test` lines to `bazel test`
(which inherits `build`). Named configs (`build:metrics`) apply only with
--config, so they do not change what a plain build produces; `startup`,
`query`, `run` lines change no output either.

A flag does not change every target: it changes those whose configured
actions it changes. When two revisions' flags differ, each revision's action
graph is read from `bazel aquery --output=jsonproto --include_aspects` in the
configuration `bazel test //...` uses (the workspace rc applies the `build`
lines; the `test` lines are passed on the command line, after them, as
`bazel test` would). Each target's action keys then join its Merkle digest, so
what consumes a changed action's output is affected too (affected.py).
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from typing import Any, Callable

ALL_TARGETS = "deps(//...)"

BUILD_COMMANDS = {"common": "build", "build": "build", "test": "test"}


def parse(read: Callable[[str], bytes | None], path: str = ".bazelrc") -> dict[str, dict[str, list[str]]]:
    """{"build"|"test": {flag: [values in order]}, "workspace": {"register_toolchains": [...]}}."""
    flags: dict[str, dict[str, list[str]]] = {"build": {}, "test": {}}
    _parse_into(read, path, flags, seen=set())
    flags["workspace"] = {"register_toolchains": registered_toolchains(read)}
    return flags


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        lines.append(current + raw)
        current = ""
    if current:
        lines.append(current)
    return lines


def _parse_into(read: Callable[[str], bytes | None], path: str, flags: dict[str, dict[str, list[str]]],
                seen: set[str]) -> None:
    if path in seen:
        return
    seen.add(path)
    content = read(path)
    if content is None:
        return
    for line in _logical_lines(content.decode(errors="replace")):
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        if not tokens:
            continue
        command, *rest = tokens
        if command in ("import", "try-import") and rest:
            target = rest[0].replace("%workspace%/", "")
            if not target.startswith("/"):
                _parse_into(read, target, flags, seen)
            continue
        if ":" in command or command not in BUILD_COMMANDS:
            continue
        group = flags[BUILD_COMMANDS[command]]
        index = 0
        while index < len(rest):
            token = rest[index]
            if token.startswith("--") and "=" in token:
                name, value = token.split("=", 1)
            elif token.startswith("-") and index + 1 < len(rest) and not rest[index + 1].startswith("-"):
                name, value = token, rest[index + 1]
                index += 1
            else:
                name, value = token, ""
            group.setdefault(name, []).append(value)
            index += 1


_REGISTER_TOOLCHAINS = re.compile(r"register_toolchains\(([^)]*)\)")


def registered_toolchains(read: Callable[[str], bytes | None]) -> list[str]:
    """The toolchains WORKSPACE registers, in order: like a flag, they configure every target."""
    text = (read("WORKSPACE") or b"").decode(errors="replace")
    text = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    return [label for call in _REGISTER_TOOLCHAINS.findall(text) for label in re.findall(r'"([^"]+)"', call)]


def changed(base: dict[str, dict[str, list[str]]], head: dict[str, dict[str, list[str]]]) -> list[str]:
    """The flags whose values differ, e.g. ["--action_env", "--test_env (test)"]."""
    names = []
    for group in ("build", "test", "workspace"):
        old, new = base.get(group, {}), head.get(group, {})
        suffix = {"build": "", "test": " (test)", "workspace": " (WORKSPACE)"}[group]
        names += [flag + suffix for flag in sorted(set(old) | set(new)) if old.get(flag) != new.get(flag)]
    return names


def test_arguments(flags: dict[str, dict[str, list[str]]]) -> list[str]:
    """The `test` lines as command-line flags (so that aquery sees `bazel test`'s configuration)."""
    return [f"{name}={value}" if value else name for name, values in flags["test"].items() for value in values]


def action_keys(aquery: dict[str, Any]) -> dict[str, dict[str, str]]:
    """label -> {action name: action key} from aquery's jsonproto output.

    An action is named by its mnemonic, its primary output and the aspects that
    created it, so that the same action can be matched across two revisions.
    """
    fragments = {f["id"]: f for f in aquery.get("pathFragments", [])}

    def path(fragment_id: int) -> str:
        parts = []
        while fragment_id:
            fragment = fragments[fragment_id]
            parts.append(fragment["label"])
            fragment_id = fragment.get("parentId", 0)
        return "/".join(reversed(parts))

    artifacts = {a["id"]: a["pathFragmentId"] for a in aquery.get("artifacts", [])}
    labels = {t["id"]: t["label"] for t in aquery.get("targets", [])}
    aspects = {a["id"]: a["name"] for a in aquery.get("aspectDescriptors", [])}
    result: dict[str, dict[str, str]] = {}
    for action in aquery.get("actions", []):
        output = action.get("primaryOutputId") or (action.get("outputIds") or [0])[0]
        name = f"{action['mnemonic']} {path(artifacts[output]) if output in artifacts else ''}"
        via = [aspects.get(i, str(i)) for i in action.get("aspectDescriptorIds", [])]
        if via:
            name += f" (aspect {', '.join(via)})"
        keys = result.setdefault(labels[action["targetId"]], {})
        keys[name] = action.get("actionKey", "") + keys.get(name, "")
    return result


def digest(keys: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:20]
