"""Chimera's CI jobs, called by .github/workflows/*.yml and runnable here.

    ci/pipeline.sh setup                                     tools/bootstrap.sh (Debian packages)
    ci/pipeline.sh plan [--base REV] [--github-output FILE]   layers a change needs (JSON)
    ci/pipeline.sh layer N|layerN_name                       bazel test that layer
    ci/pipeline.sh full                                      .ci/run (whole repository)
    ci/pipeline.sh remote                                    test suite on a fresh Buildbarn
    ci/pipeline.sh local [--workflow F] [--job J]... [--base REV]   the workflow's job graph here

Exit status: a job's own status; 2 with one message for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

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
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
