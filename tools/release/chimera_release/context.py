"""What every command needs: the repository, Bazel and the snapshot cache."""

from __future__ import annotations

import argparse
import dataclasses
import os
import pathlib

from chimera_release.bazel import Bazel
from chimera_release.errors import UsageError
from chimera_release.gitrepo import WORKING_TREE, GitRepo, Revision
from chimera_release.snapshot import SnapshotStore


def default_repo() -> str:
    # `bazel run` starts the tool inside its runfiles; the caller's tree is here.
    return os.environ.get("BUILD_WORKSPACE_DIRECTORY", os.getcwd())


def default_cache() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("CHIMERA_RELEASE_CACHE", os.path.join(base, "chimera-release"))


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=default_repo(), help="the git repository (default: the workspace)")
    parser.add_argument("--cache-dir", default=default_cache(), help="per-revision hash cache")
    parser.add_argument("--bazel", default=os.environ.get("BAZEL", "bazel"), help="the Bazel binary")
    parser.add_argument("--bazel-output-user-root", default=None,
                        help="Bazel --output_user_root for the tool's own server")
    parser.add_argument("--output-base", default=None,
                        help="Bazel --output_base for the tool's own server (e.g. under /tmp in CI)")
    parser.add_argument("--keep-bazel-server", action="store_true",
                        help="leave the Bazel server this command started running (faster next cold run)")
    parser.add_argument("--format", choices=("json", "table"), default="json")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="use the working tree (uncommitted changes) as the head revision")


@dataclasses.dataclass
class Context:
    repo: GitRepo
    store: SnapshotStore
    allow_dirty: bool
    keep_bazel_server: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Context":
        repo_path = pathlib.Path(args.repo)
        if not repo_path.exists():
            raise UsageError(f"--repo {args.repo}: no such directory")
        repo = GitRepo(repo_path.resolve())
        root = pathlib.Path(args.bazel_output_user_root) if args.bazel_output_user_root else None
        output_base = pathlib.Path(args.output_base).resolve() if args.output_base else None
        bazel = Bazel(binary=args.bazel, output_user_root=root, output_base=output_base)
        return cls(repo=repo, store=SnapshotStore(repo, bazel, pathlib.Path(args.cache_dir)),
                   allow_dirty=args.allow_dirty, keep_bazel_server=args.keep_bazel_server)

    def close(self) -> None:
        """Shuts down the Bazel server this command started, unless asked to keep it."""
        if not self.keep_bazel_server:
            self.store.bazel.stop_started()

    def head(self, name: str | None) -> Revision:
        """The named revision, or the working tree (which must be clean unless allowed)."""
        if name is not None:
            return self.repo.resolve(name)
        if self.repo.is_dirty():
            if not self.allow_dirty:
                raise UsageError(f"the working tree of {self.repo.root} has uncommitted changes; "
                                 "commit them, name --head, or pass --allow-dirty")
            return self.repo.resolve(WORKING_TREE)
        return self.repo.resolve("HEAD")

    def revision(self, name: str | None) -> Revision:
        """A named revision, or (None) the working tree / HEAD as head() decides."""
        return self.head(None) if name is None else self.repo.resolve(name)


def describe(revision: Revision) -> dict[str, object]:
    return {"name": revision.name, "commit": revision.commit, "tree": revision.tree, "clean": revision.clean}
