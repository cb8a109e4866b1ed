"""Runs a GitHub Actions workflow's job graph here, as GitHub would order it.

Only what Chimera's workflows use is understood, and anything else is an error:
jobs ordered by `needs`, a `strategy.matrix` of one list (literal or
`${{ fromJSON(needs.J.outputs.O) }}`), job `outputs` from step outputs written to
$GITHUB_OUTPUT, `if:` of the form `needs.J.outputs.O != 'literal'` (or `==`), and
`run:` steps. `uses:` steps (checkout, caches) are skipped: the tree is already here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_CONDITION = re.compile(r"^(needs\.[\w-]+\.outputs\.[\w-]+)\s*(==|!=)\s*'([^']*)'$")


class WorkflowError(ValueError):
    """The workflow uses something this runner does not understand."""


@dataclass
class JobResult:
    name: str
    status: str  # "success", "failure", "skipped"
    outputs: dict[str, str] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)


def job_order(jobs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Jobs in an order where each comes after everything it `needs`."""
    order: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name not in jobs:
            raise WorkflowError(f"job {path[-1]!r} needs unknown job {name!r}")
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            raise WorkflowError(f"jobs form a cycle: {' -> '.join(path + (name,))}")
        state[name] = "visiting"
        for dependency in needs_of(jobs[name]):
            visit(dependency, path + (name,))
        state[name] = "done"
        order.append(name)

    for name in jobs:
        visit(name, (name,))
    return order


def needs_of(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs", [])
    return [needs] if isinstance(needs, str) else list(needs)


def evaluate(expression: str, context: Mapping[str, Any]) -> Any:
    """A dotted context lookup, optionally wrapped in fromJSON(...)."""
    match = re.fullmatch(r"fromJSON\((.*)\)", expression)
    if match:
        return json.loads(str(evaluate(match.group(1).strip(), context)))
    value: Any = context
    for part in expression.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise WorkflowError(f"cannot evaluate ${{{{ {expression} }}}}")
        value = value[part]
    return value


def substitute(text: str, context: Mapping[str, Any]) -> str:
    return _EXPR.sub(lambda m: str(evaluate(m.group(1), context)), text)


def condition_holds(condition: str | None, context: Mapping[str, Any]) -> bool:
    if condition is None:
        return True
    match = _CONDITION.match(_EXPR.sub(lambda m: m.group(1), condition).strip())
    if match is None:
        raise WorkflowError(f"unsupported if: {condition!r}")
    left, operator, literal = match.groups()
    equal = str(evaluate(left, context)) == literal
    return equal if operator == "==" else not equal


def matrix_values(job: Mapping[str, Any], context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One context entry per matrix combination ([{}] without a matrix)."""
    matrix = job.get("strategy", {}).get("matrix")
    if matrix is None:
        return [{}]
    if not isinstance(matrix, Mapping) or len(matrix) != 1:
        raise WorkflowError("a matrix must have exactly one dimension here")
    (key, values), = matrix.items()
    if isinstance(values, str):
        values = evaluate(_EXPR.fullmatch(values.strip()).group(1), context)  # type: ignore[union-attr]
    return [{key: value} for value in values]


Runner = Callable[[str, Mapping[str, str], Path], int]


def run_shell(script: str, env: Mapping[str, str], cwd: Path) -> int:
    return subprocess.run(["bash", "-eo", "pipefail", "-c", script], env=dict(env), cwd=cwd, check=False).returncode


def run_workflow(
    workflow: Mapping[str, Any],
    workspace: Path,
    runner: Runner = run_shell,
    only: Sequence[str] = (),
    base: str = "",
) -> list[JobResult]:
    """Runs the jobs in dependency order; a job whose needs failed is skipped."""
    jobs: Mapping[str, Mapping[str, Any]] = workflow["jobs"]
    results: dict[str, JobResult] = {}
    for name in job_order(jobs):
        if only and name not in only:
            continue
        job = jobs[name]
        result = JobResult(name=name, status="success")
        results[name] = result
        needs = {n: {"outputs": results[n].outputs, "result": results[n].status} for n in needs_of(job) if n in results}
        if any(results.get(n) is None or results[n].status != "success" for n in needs_of(job)):
            result.status = "skipped"
            continue
        github = {"workspace": str(workspace), "sha": "HEAD", "event": {"pull_request": {"base": {"sha": base}}}}
        context: dict[str, Any] = {"needs": needs, "github": github}
        if not condition_holds(job.get("if"), context):
            result.status = "skipped"
            continue
        for combination in matrix_values(job, context):
            step_outputs: dict[str, dict[str, str]] = {}
            for step in job.get("steps", []):
                if "run" not in step:
                    continue
                step_context = {**context, "matrix": combination, "steps": {k: {"outputs": v} for k, v in step_outputs.items()}}
                script = substitute(step["run"], step_context)
                result.runs.append(script)
                with tempfile.NamedTemporaryFile("r", suffix=".github_output") as output_file:
                    env = {**os.environ, **{k: substitute(str(v), step_context) for k, v in step.get("env", {}).items()}}
                    env["GITHUB_OUTPUT"] = output_file.name
                    env["GITHUB_WORKSPACE"] = str(workspace)
                    status = runner(script, env, workspace)
                    outputs = dict(line.split("=", 1) for line in output_file.read().splitlines() if "=" in line)
                if "id" in step:
                    step_outputs[step["id"]] = outputs
                if status != 0:
                    result.status = "failure"
                    break
            if result.status == "failure":
                break
            for key, value in job.get("outputs", {}).items():
                result.outputs[key] = substitute(value, {**context, "steps": {k: {"outputs": v} for k, v in step_outputs.items()}})
    return list(results.values())
