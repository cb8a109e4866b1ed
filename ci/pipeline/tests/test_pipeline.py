"""The workflows validate against GitHub's schema offline, call only ci/ scripts,
and the local runner runs their job graph in GitHub's order."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from ci.pipeline import plan, workflow

WORKFLOWS = Path(__file__).resolve().parents[3] / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
LAYERS = ["layer1_discovery", "layer2_planning", "layer4_execution"]


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    # check-jsonschema's vendored copy of schemastore's github-workflow schema: no network.
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_three_pipelines_exist() -> None:
    assert [p.name for p in FILES] == ["ci-cd.yml", "layer5-ci.yml", "layer7-ci.yml"]


def test_workflows_match_the_github_workflow_schema() -> None:
    result = validate(*FILES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_rejects_a_misspelt_key(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text((WORKFLOWS / "ci-cd.yml").read_text().replace("runs-on:", "runs_on:", 1))
    result = validate(broken)
    assert result.returncode == 1, result.stdout + result.stderr


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_step_calls_a_ci_script(path: Path) -> None:
    for name, job in yaml.safe_load(path.read_text())["jobs"].items():
        for step in job["steps"]:
            if "run" in step:
                assert step["run"].startswith("ci/pipeline.sh "), (name, step["run"])
                assert "\n" not in step["run"].strip(), f"{name}: logic belongs in ci/, not in YAML"


class FakeShell:
    """Records scripts; the plan step reports the given layers on $GITHUB_OUTPUT."""

    def __init__(self, layers: str, fail: str = "") -> None:
        self.layers = layers
        self.fail = fail
        self.scripts: list[str] = []

    def __call__(self, script: str, env: Mapping[str, str], cwd: Path) -> int:
        self.scripts.append(script)
        if script.startswith("ci/pipeline.sh plan"):
            Path(env["GITHUB_OUTPUT"]).write_text(f"layers={self.layers}\n")
        return 1 if self.fail and self.fail in script else 0


def ci_cd() -> dict:
    return yaml.safe_load((WORKFLOWS / "ci-cd.yml").read_text())


def test_local_runner_fans_out_one_layer_job_per_planned_layer(tmp_path: Path) -> None:
    shell = FakeShell('["layer1_discovery", "layer4_execution"]')
    results = workflow.run_workflow(ci_cd(), tmp_path, runner=shell, base="abc123")
    assert [r.name for r in results] == ["plan", "layer", "full"]
    assert all(r.status == "success" for r in results)
    layer_runs = [s for s in shell.scripts if s.startswith("ci/pipeline.sh layer")]
    assert layer_runs == ["ci/pipeline.sh layer layer1_discovery", "ci/pipeline.sh layer layer4_execution"]
    assert results[0].outputs == {"layers": '["layer1_discovery", "layer4_execution"]'}


def test_local_runner_skips_layer_jobs_when_no_layer_is_affected(tmp_path: Path) -> None:
    results = workflow.run_workflow(ci_cd(), tmp_path, runner=FakeShell("[]"))
    assert {r.name: r.status for r in results} == {"plan": "success", "layer": "skipped", "full": "success"}


def test_a_failed_job_skips_the_jobs_that_need_it(tmp_path: Path) -> None:
    results = workflow.run_workflow(ci_cd(), tmp_path, runner=FakeShell("[]", fail="plan"))
    assert {r.name: r.status for r in results} == {"plan": "failure", "layer": "skipped", "full": "skipped"}


def test_job_order_rejects_cycles_and_unknown_needs() -> None:
    with pytest.raises(workflow.WorkflowError, match="cycle"):
        workflow.job_order({"a": {"needs": "b"}, "b": {"needs": ["a"]}})
    with pytest.raises(workflow.WorkflowError, match="unknown job"):
        workflow.job_order({"a": {"needs": "nope"}})
    assert workflow.job_order({"c": {"needs": ["a", "b"]}, "b": {"needs": "a"}, "a": {}}) == ["a", "b", "c"]


def test_plan_selects_layers_owning_affected_targets() -> None:
    labels = ["//layers/layer2_planning:planning_test", "//py:framework", "//layers/flow:flow_test"]
    assert plan.select_layers(["py/chimera/framework/flags.py"], labels, LAYERS) == [
        "layer2_planning"
    ]
    assert plan.select_layers(["README.md"], [], LAYERS) == []


def test_plan_selects_every_layer_for_global_files_or_no_base() -> None:
    assert plan.select_layers(["third_party/python/requirements_lock.txt"], [], LAYERS) == LAYERS
    assert plan.select_layers([".bazelrc"], [], LAYERS) == LAYERS
    assert plan.select_layers(None, [], LAYERS) == LAYERS
    assert not plan.is_global("tools_extra/x.py")


def test_query_expression_lists_each_changed_file_once() -> None:
    assert plan.query_expression(["b.py", "a.py", "b.py"]) == "rdeps(//..., set(a.py b.py))"
