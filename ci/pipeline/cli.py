"""Chimera's CI jobs, called by .github/workflows/*.yml and runnable here.

    ci/pipeline.sh setup                                     tools/bootstrap.sh (Debian packages)
    ci/pipeline.sh plan [--base REV] [--github-output FILE]   layers a change needs (JSON)
    ci/pipeline.sh layer N|layerN_name                       bazel test that layer
    ci/pipeline.sh full                                      .ci/run (whole repository)
    ci/pipeline.sh remote                                    test suite on a fresh Buildbarn
    ci/pipeline.sh local [--workflow F] [--job J]... [--base REV]   the workflow's job graph here
    ci/pipeline.sh check-workflows                           every run: line -> script + bazel targets

Exit status: a job's own status; 2 with one message for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ci.pipeline import plan, workflow

_NO_BASE = {"", "0" * 40}


def fail(message: str) -> NoReturn:
    """One message on stderr, exit status 2."""
    print(f"pipeline: {message}", file=sys.stderr)
    raise SystemExit(2)


def workspace_root() -> Path:
    return Path(__file__).resolve().parents[2]


def changed_files(root: Path, base: str) -> list[str] | None:
    """Files changed between BASE and HEAD; None when there is no base to compare."""
    if base in _NO_BASE:
        return None
    diff = subprocess.run(
        ["git", "diff", "--name-only", f"{base}...HEAD"], cwd=root, capture_output=True, text=True, check=False
    )
    if diff.returncode != 0:
        fail(f"git diff against {base!r} failed: {diff.stderr.strip()}")
    return [line for line in diff.stdout.splitlines() if line]


def affected_labels(root: Path, changed: list[str]) -> list[str]:
    """`bazel query rdeps(//..., set(changed))` over the changed files that still exist."""
    present = [path for path in changed if (root / path).is_file()]
    if not present:
        return []
    query = subprocess.run(
        ["bazel", "query", "--keep_going", "--output=label", plan.query_expression(present)],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    # 3: partial result (files outside any package are reported and skipped).
    if query.returncode not in (0, 3):
        fail(f"bazel query failed: {query.stderr.strip().splitlines()[-1:]}")
    return query.stdout.split()


def command_plan(args: argparse.Namespace) -> int:
    root = workspace_root()
    known = plan.layer_packages(root)
    changed = changed_files(root, args.base)
    labels = affected_labels(root, changed) if changed is not None else []
    layers = plan.select_layers(changed, labels, known)
    result = {"base": args.base or None, "changed_files": changed, "layers": layers}
    print(json.dumps(result, indent=2))
    if args.github_output:
        with open(args.github_output, "a", encoding="utf-8") as out:
            out.write(f"layers={json.dumps(layers)}\n")
    return 0


def resolve_layer(root: Path, name: str) -> str:
    known = plan.layer_packages(root)
    if name in known:
        return name
    matches = [layer for layer in known if name.isdigit() and plan.layer_number(layer) == int(name)]
    if not matches:
        fail(f"no layer {name!r} under layers/ (present: {', '.join(known)})")
    return matches[0]


def command_layer(args: argparse.Namespace) -> int:
    root = workspace_root()
    layer = resolve_layer(root, args.layer)
    return subprocess.run(["bazel", "test", "--jobs=2", f"//layers/{layer}/..."], cwd=root, check=False).returncode


def command_script(script: str) -> int:
    return subprocess.run([str(workspace_root() / script)], check=False).returncode


def command_local(args: argparse.Namespace) -> int:
    root = workspace_root()
    path = root / ".github" / "workflows" / args.workflow
    if not path.is_file():
        fail(f"no workflow {path}")
    try:
        import yaml  # only the local runner parses YAML
    except ImportError:
        fail("the local runner needs PyYAML (apt-get install python3-yaml)")
    definition = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        results = workflow.run_workflow(definition, root, only=args.job, base=args.base)
    except workflow.WorkflowError as error:
        fail(f"{path.name}: {error}")
    print(f"{'job':<16} {'status':<8} steps")
    for result in results:
        print(f"{result.name:<16} {result.status:<8} {len(result.runs)}")
    return 1 if any(r.status == "failure" for r in results) else 0


#: The one step that is not a script: actions/checkout needs git, which the container lacks.
CONTAINER_PREREQUISITE = "apt-get update && apt-get install -y --no-install-recommends git ca-certificates"
CONTAINER_IMAGE = "debian:bookworm"

#: What each CLI command runs: the script, and the Bazel target patterns it builds or tests
#: (a layer job: that layer's package). `plan` queries rdeps over the whole tree.
_SCRIPTS = {"setup": "tools/bootstrap.sh", "plan": "ci/pipeline/cli.py", "layer": "ci/pipeline/cli.py",
            "full": ".ci/run", "remote": "ci/buildbarn_ci.sh", "local": "ci/pipeline/cli.py",
            "check-workflows": "ci/pipeline/cli.py"}


@dataclass(frozen=True)
class ResolvedStep:
    workflow: str
    job: str
    line: str
    script: str
    patterns: tuple[str, ...]


def rendered_runs(root: Path, definition: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(job, run line) of every step, a matrix over the planned layers rendered for every layer."""
    for name, job in definition["jobs"].items():
        matrix = job.get("strategy", {}).get("matrix", {})
        combinations = [{key: layer} for key in matrix for layer in plan.layer_packages(root)] or [{}]
        for combination in combinations:
            for step in job.get("steps", []):
                if "run" in step:
                    yield name, workflow.substitute(step["run"], {"matrix": combination}).strip()


def resolve_run(root: Path, line: str) -> tuple[str, tuple[str, ...]]:
    """The script a workflow's run: line executes and the target patterns it needs; WorkflowError otherwise."""
    if line == CONTAINER_PREREQUISITE:
        return "", ()
    words = shlex.split(line)
    if not words or words[0] != "ci/pipeline.sh":
        raise workflow.WorkflowError(f"{line!r}: a run: line calls ci/pipeline.sh (logic belongs in ci/)")
    try:
        args = parser().parse_args(words[1:])
    except SystemExit as exc:
        raise workflow.WorkflowError(f"{line!r}: ci/pipeline.sh rejects these arguments") from exc
    script = _SCRIPTS[args.command]
    if args.command == "layer":
        return script, (f"//layers/{resolve_layer(root, args.layer)}/...",)
    return script, (("//...",) if args.command in ("plan", "full", "remote", "local") else ())


def bazel_query(root: Path, pattern: str) -> list[str]:
    done = subprocess.run(["bazel", "query", "--output=label", pattern], cwd=root, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise workflow.WorkflowError(f"bazel query {pattern} failed: {tail[0]}")
    return done.stdout.split()


def check_workflows(root: Path, query: Callable[[Path, str], list[str]] = bazel_query) -> list[ResolvedStep]:
    """Every run: line of every workflow, resolved; WorkflowError at the first that does not
    resolve to an executable script and targets `query` knows, or a job outside the container."""
    import yaml  # only the workflow checks parse YAML

    files = sorted((root / ".github" / "workflows").glob("*.yml"))
    if not files:
        raise workflow.WorkflowError(f"no workflow under {root / '.github' / 'workflows'}")
    resolved, known = [], {}
    for path in files:
        definition = yaml.safe_load(path.read_text(encoding="utf-8"))
        for name, job in definition["jobs"].items():
            container = job.get("container", {})
            if not isinstance(container, dict) or container.get("image") != CONTAINER_IMAGE:
                raise workflow.WorkflowError(f"{path.name}: job {name} does not run in a {CONTAINER_IMAGE} container")
            if "--user" in str(container.get("options", "")):
                raise workflow.WorkflowError(f"{path.name}: job {name}: the bootstrap needs root (no --user)")
        for name, line in rendered_runs(root, definition):
            script, patterns = resolve_run(root, line)
            # The CLI's own module is run by python3 -m; every other script is executed.
            needed = os.R_OK if script.endswith(".py") else os.X_OK
            if script and not ((root / script).is_file() and os.access(root / script, needed)):
                raise workflow.WorkflowError(f"{path.name}: job {name}: {line!r} runs {script}, which is missing "
                                             "or not executable")
            for pattern in patterns:
                if pattern not in known:
                    known[pattern] = len(query(root, pattern))
                if known[pattern] == 0:
                    raise workflow.WorkflowError(f"{path.name}: job {name}: {line!r}: bazel query {pattern} is empty")
            resolved.append(ResolvedStep(path.name, name, line, script, patterns))
    return resolved


def command_check_workflows(_: argparse.Namespace) -> int:
    root = workspace_root()
    try:
        steps = check_workflows(root)
    except workflow.WorkflowError as error:
        fail(str(error))
    for step in steps:
        targets = ", ".join(step.patterns) or "-"
        print(f"{step.workflow:<14} {step.job:<8} {step.line:<40} -> {step.script or '(container prerequisite)'} "
              f"[{targets}]")
    print(f"pipeline: {len(steps)} run: lines in {len({s.workflow for s in steps})} workflows resolve to scripts "
          f"and known targets")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="ci/pipeline.sh", description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("plan", help="layers a change needs")
    p.add_argument("--base", default=os.environ.get("CHIMERA_CI_BASE", ""), help="compare HEAD with this revision")
    p.add_argument("--github-output", default="", help="append layers=<json> here ($GITHUB_OUTPUT)")
    p.set_defaults(run=command_plan)
    p = sub.add_parser("layer", help="bazel test one layer")
    p.add_argument("layer", help="layer number or directory name")
    p.set_defaults(run=command_layer)
    sub.add_parser("setup", help="tools/bootstrap.sh").set_defaults(run=lambda _: command_script("tools/bootstrap.sh"))
    sub.add_parser("full", help=".ci/run").set_defaults(run=lambda _: command_script(".ci/run"))
    sub.add_parser("remote", help="test suite on a fresh Buildbarn").set_defaults(
        run=lambda _: command_script("ci/buildbarn_ci.sh")
    )
    p = sub.add_parser("local", help="run a workflow's job graph here")
    p.add_argument("--workflow", default="ci-cd.yml")
    p.add_argument("--job", action="append", default=[], help="run only these jobs (repeatable)")
    p.add_argument("--base", default="", help="base revision for the plan job")
    p.set_defaults(run=command_local)
    sub.add_parser("check-workflows", help="every workflow run: line resolves to a script and known targets").set_defaults(
        run=command_check_workflows)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
