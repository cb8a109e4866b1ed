"""The git side of release queries: revisions, tree hashes, file digests, exports."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess
import tempfile

from chimera_release.errors import UsageError

WORKING_TREE = "WORKTREE"  # pseudo-revision: the working tree, untracked files included


@dataclasses.dataclass(frozen=True)
class Revision:
    """A resolved revision: what the caller named, its commit (if any) and its tree."""

    name: str
    commit: str | None
    tree: str
    clean: bool


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
