"""What a revision's build reads besides its BUILD files: git, Bazel, the lock and the flags.

- git: revisions, tree hashes, file digests and exports of a tree;
- Bazel: queries on an exported revision, one reusable server per checkout;
- the requirements lock (pip-compile --generate-hashes output): pins and the
  wheel -> wheel edges from its `# via` annotations;
- the build flags: a revision's .bazelrc and WORKSPACE toolchain registrations,
  and the configured action keys Bazel derives from them.

Standard library only: CI runs `affected` as a plain script.
"""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import tempfile
from typing import Any, Callable

from chimera_release.errors import UsageError

# ---------------------------------------------------------------------------
# git

WORKING_TREE = "WORKTREE"  # pseudo-revision: the working tree, untracked files included


@dataclasses.dataclass(frozen=True)
class Revision:
    """A resolved revision: what the caller named, its commit (if any) and its tree."""

    name: str
    commit: str | None
    tree: str
    clean: bool

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "commit": self.commit, "tree": self.tree, "clean": self.clean}


class GitRepo:
    """One git repository, addressed by its top-level directory."""

    def __init__(self, path: pathlib.Path) -> None:
        try:
            top = self._git_at(path, "rev-parse", "--show-toplevel").strip()
        except UsageError:
            raise UsageError(f"{path} is not inside a git repository") from None
        self.root = pathlib.Path(top)

    @staticmethod
    def _git_at(cwd: pathlib.Path, *args: str, env: dict[str, str] | None = None, binary: bool = False) -> str | bytes:
        if not cwd.is_dir():
            raise UsageError(f"{cwd} is not a directory")
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, env=env)
        if result.returncode != 0:
            raise UsageError(f"git {' '.join(args)}: {result.stderr.decode(errors='replace').strip()}")
        return result.stdout if binary else result.stdout.decode()

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        return self._git_at(self.root, *args, env=env)

    def is_dirty(self) -> bool:
        return bool(self.git("status", "--porcelain", "--untracked-files=normal").strip())

    def resolve(self, name: str) -> Revision:
        """Resolves a revision name; WORKTREE means the working tree as it is now."""
        if name == WORKING_TREE:
            return Revision(name=name, commit=None, tree=self.working_tree_hash(), clean=not self.is_dirty())
        result = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}"],
            cwd=self.root, capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise UsageError(f"unknown revision {name!r} in {self.root}")
        commit = result.stdout.strip()
        tree = self.git("rev-parse", f"{commit}^{{tree}}").strip()
        return Revision(name=name, commit=commit, tree=tree, clean=True)

    def working_tree_hash(self) -> str:
        """The tree object of the working tree (tracked and untracked, not ignored)."""
        with tempfile.TemporaryDirectory() as scratch:
            env = dict(os.environ, GIT_INDEX_FILE=os.path.join(scratch, "index"))
            if self._has_head():
                self.git("read-tree", "HEAD", env=env)
            self.git("add", "-A", ".", env=env)
            return self.git("write-tree", env=env).strip()

    def _has_head(self) -> bool:
        return subprocess.run(["git", "rev-parse", "--verify", "--quiet", "HEAD"], cwd=self.root,
                              capture_output=True).returncode == 0

    def file_digests(self, tree: str) -> dict[str, str]:
        """Path -> git object id for every file and directory of a tree."""
        digests: dict[str, str] = {}
        for line in self.git("ls-tree", "-r", "-t", "-z", tree).split("\0"):
            if not line:
                continue
            meta, path = line.split("\t", 1)
            mode, _kind, oid = meta.split(" ")
            digests[path] = f"{mode}:{oid}"
        return digests

    def read(self, tree: str, path: str) -> bytes | None:
        result = subprocess.run(["git", "cat-file", "blob", f"{tree}:{path}"], cwd=self.root, capture_output=True)
        return result.stdout if result.returncode == 0 else None

    def export(self, tree: str, destination: pathlib.Path, index: pathlib.Path) -> None:
        """Makes `destination` hold exactly the files of `tree`, rewriting only what differs.

        git itself does the work, with an index of the export's own (`index`):
        switching the export between two revisions touches only the files that
        differ, so the Bazel server that watches it re-reads only those.
        """
        destination.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, GIT_INDEX_FILE=str(index), GIT_WORK_TREE=str(destination))
        self.git("read-tree", "-u", "--reset", tree, env=env)


# ---------------------------------------------------------------------------
# Bazel

# Every target of the main repository (files included) plus the repository
# rules of WORKSPACE: enough to hash the graph without fetching any external
# repository (their contents are pinned by their rule attributes).
GRAPH_QUERY = "//...:* + //external:*"
QUERY_FLAGS = (
    "--output=streamed_proto",
    "--noproto:default_values",
    "--noproto:locations",
    "--proto:rule_inputs_and_outputs",
)


@dataclasses.dataclass
class Bazel:
    """How to call Bazel: the binary and the startup options shared by every call.

    Remembers the workspaces whose server it started, so that `stop_started`
    leaves a server the caller already had running alone.
    """

    binary: str = "bazel"
    output_user_root: pathlib.Path | None = None
    output_base: pathlib.Path | None = None
    max_idle_secs: int = 300
    started: set[pathlib.Path] = dataclasses.field(default_factory=set)

    def startup_options(self) -> list[str]:
        options = [f"--max_idle_secs={self.max_idle_secs}"]
        if self.output_base is not None:
            options.insert(0, f"--output_base={self.output_base}")
        if self.output_user_root is not None:
            options.insert(0, f"--output_user_root={self.output_user_root}")
        return options

    def _output_base(self, workspace: pathlib.Path) -> pathlib.Path:
        """Where the workspace's server lives: --output_base, else Bazel's own rule (md5 of the path)."""
        if self.output_base is not None:
            return self.output_base
        root = self.output_user_root or pathlib.Path.home() / ".cache" / "bazel" / f"_bazel_{getpass.getuser()}"
        return root / hashlib.md5(str(workspace.resolve()).encode()).hexdigest()

    def server_running(self, workspace: pathlib.Path) -> bool:
        try:
            pid = int((self._output_base(workspace) / "server" / "server.pid.txt").read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return False
        return True

    def run(self, workspace: pathlib.Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        if shutil.which(self.binary) is None and not pathlib.Path(self.binary).is_file():
            raise UsageError(f"bazel binary {self.binary!r} not found")
        if args[0] != "shutdown" and workspace not in self.started and not self.server_running(workspace):
            self.started.add(workspace)
        result = subprocess.run(
            [self.binary, *self.startup_options(), *args], cwd=workspace, capture_output=True
        )
        if check and result.returncode != 0:
            errors = [line for line in result.stderr.decode(errors="replace").splitlines() if "ERROR" in line]
            detail = "; ".join(errors[-3:]) or result.stderr.decode(errors="replace").strip()[-500:]
            raise UsageError(f"bazel {args[0]} failed in {workspace}: {detail}")
        return result

    def query_graph(self, workspace: pathlib.Path) -> bytes:
        return self.run(workspace, "query", *QUERY_FLAGS, GRAPH_QUERY).stdout

    def aquery(self, workspace: pathlib.Path, expression: str, flags: list[str]) -> dict:
        """The configured action graph (aspects included) as aquery's jsonproto document."""
        output = self.run(workspace, "aquery", "--output=jsonproto", "--include_aspects", "--include_artifacts",
                          *flags, expression).stdout
        try:
            return json.loads(output or b"{}")
        except ValueError as error:
            raise UsageError(f"bazel aquery printed no JSON in {workspace}: {error}") from None

    def version(self) -> str:
        result = subprocess.run([self.binary, "--version"], capture_output=True, text=True)
        return result.stdout.strip() or "unknown"

    def identity(self) -> str:
        """Names this exact Bazel binary without running it (a cache key part; cheap)."""
        located = shutil.which(self.binary) or self.binary
        real = pathlib.Path(located).resolve()
        try:
            stat = real.stat()
        except OSError:
            raise UsageError(f"bazel binary {self.binary!r} not found") from None
        return f"{real}:{stat.st_size}:{stat.st_mtime_ns}"

    def shutdown(self, workspace: pathlib.Path) -> None:
        if workspace.is_dir():
            self.run(workspace, "shutdown", check=False)

    def stop_started(self) -> None:
        """Shuts down every server this object started (none it found running)."""
        for workspace in sorted(self.started):
            self.shutdown(workspace)
        self.started.clear()


# ---------------------------------------------------------------------------
# The requirements lock

_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def normalize_project(name: str) -> str:
    """PEP 503 project name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclasses.dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: tuple[str, ...]
    # The locked distributions that require this one: pip-compile's `# via`
    # annotations (requirement files, `-r ...`, are left out).
    required_by: tuple[str, ...] = ()

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"{self.version}\n{' '.join(self.hashes)}".encode()).hexdigest()[:16]


def _via(comment: str) -> list[str]:
    """The distributions named by one `# via` comment line (single-line or list form)."""
    names = comment.removeprefix("via").strip()
    return [normalize_project(n) for n in names.split(",") if n.strip() and not n.strip().startswith("-")] if names else []


def parse_lock(text: str) -> dict[str, Pin]:
    """Normalized project name -> pin, from a lock file's text."""
    logical: list[tuple[str, list[str]]] = []  # (requirement line, its `# via` names)
    current = ""
    in_via = False
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#"):
            comment = stripped.lstrip("#").strip()
            if comment.startswith("via"):
                in_via = True
                if logical:
                    logical[-1][1].extend(_via(comment))
            elif in_via and raw.startswith("    #   ") and logical:
                logical[-1][1].extend(_via("via " + comment))
            else:
                in_via = False
            continue
        in_via = False
        line = raw.split(" #", 1)[0].strip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append((current.strip(), []))
        current = ""
    pins: dict[str, Pin] = {}
    for line, via in logical:
        match = _REQUIREMENT.match(line)
        if not match:
            continue
        hashes = tuple(sorted(re.findall(r"--hash=(\S+)", line)))
        pin = Pin(name=normalize_project(match.group(1)), version=match.group(2), hashes=hashes,
                  required_by=tuple(sorted(set(via))))
        pins[pin.name] = pin
    return pins


def lock_requirements(pins: dict[str, Pin]) -> dict[str, list[str]]:
    """Distribution -> the locked distributions it requires (the inverse of `# via`)."""
    requires: dict[str, set[str]] = {name: set() for name in pins}
    for pin in pins.values():
        for dependent in pin.required_by:
            if dependent in requires:
                requires[dependent].add(pin.name)
    return {name: sorted(deps) for name, deps in requires.items()}


# ---------------------------------------------------------------------------
# Build flags
#
# `common`/`build` lines apply to every build, `test` lines to `bazel test`
# (which inherits `build`). Named configs (`build:metrics`) apply only with
# --config, so they do not change what a plain build produces; `startup`,
# `query`, `run` lines change no output either.
#
# A flag does not change every target: it changes those whose configured
# actions it changes. When two revisions' flags differ, each revision's action
# graph is read from `bazel aquery --output=jsonproto --include_aspects` in the
# configuration `bazel test //...` uses (the workspace rc applies the `build`
# lines; the `test` lines are passed on the command line, after them, as
# `bazel test` would). Each target's action keys then join its Merkle digest, so
# what consumes a changed action's output is affected too (graph.with_actions).

ACTION_GRAPH_QUERY = "deps(//...)"

BUILD_COMMANDS = {"common": "build", "build": "build", "test": "test"}


def parse_flags(read: Callable[[str], bytes | None], path: str = ".bazelrc") -> dict[str, dict[str, list[str]]]:
    """{"build"|"test": {flag: [values in order]}, "workspace": {"register_toolchains": [...]}}."""
    flags: dict[str, dict[str, list[str]]] = {"build": {}, "test": {}}
    _parse_flags_into(read, path, flags, seen=set())
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


def _parse_flags_into(read: Callable[[str], bytes | None], path: str, flags: dict[str, dict[str, list[str]]],
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
                _parse_flags_into(read, target, flags, seen)
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


def changed_flags(base: dict[str, dict[str, list[str]]], head: dict[str, dict[str, list[str]]]) -> list[str]:
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


def actions_digest(keys: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:20]
