"""Runs Bazel queries on an exported revision, one reusable server per checkout."""

from __future__ import annotations

import dataclasses
import getpass
import hashlib
import json
import os
import pathlib
import shutil
import subprocess

from chimera_release.errors import UsageError

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
