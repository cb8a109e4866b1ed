"""The workflows validate against GitHub's schema offline, call only ci/ scripts,
and the local runner runs their job graph in GitHub's order."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
import yaml

from ci.pipeline import cli, plan, workflow

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
        runs = [step["run"] for step in job["steps"] if "run" in step]
        # Before actions/checkout, the container's one prerequisite (git); then only ci/ scripts.
        assert runs[0] == cli.CONTAINER_PREREQUISITE, name
        assert "uses" in job["steps"][1] and job["steps"][1]["uses"].startswith("actions/checkout@"), name
        for run in runs[1:]:
            assert run.startswith("ci/pipeline.sh "), (name, run)
            assert "\n" not in run.strip(), f"{name}: logic belongs in ci/, not in YAML"


SCRIPTS = ["ci/pipeline.sh", "tools/bootstrap.sh", ".ci/run", "ci/buildbarn_ci.sh"]


def fake_tree(tmp_path: Path, missing: str = "") -> Path:
    """The workflows, executable stand-ins for the scripts they call, and the eight layer packages."""
    root = tmp_path / "tree"
    (root / ".github").mkdir(parents=True)
    # Contents only: a remote executor's inputs are read-only files, and the tests edit the copies.
    shutil.copytree(WORKFLOWS, root / ".github" / "workflows", ignore=shutil.ignore_patterns("BUILD"),
                    copy_function=shutil.copyfile)
    for script in SCRIPTS + ["ci/pipeline/cli.py"]:
        if script != missing:
            (root / script).parent.mkdir(parents=True, exist_ok=True)
            (root / script).write_text("#!/bin/sh\n")
            (root / script).chmod(0o755)
    for n, name in enumerate(("discovery", "planning", "validation", "execution", "refinement", "evolution",
                              "genetics", "resources"), 1):
        (root / "layers" / f"layer{n}_{name}").mkdir(parents=True)
        (root / "layers" / f"layer{n}_{name}" / "BUILD").write_text("")
    return root


def known_packages(root: Path, pattern: str) -> list[str]:
    """A stand-in for `bazel query`: a pattern's package exists, or it matches nothing."""
    package = pattern.removeprefix("//").removesuffix("...").rstrip("/")
    return [f"//{package}:t"] if (root / package).is_dir() else []


def test_every_run_line_resolves_to_a_script_and_known_targets(tmp_path: Path) -> None:
    root = fake_tree(tmp_path)
    steps = cli.check_workflows(root, known_packages)
    layer_steps = {s.patterns for s in steps if s.line.startswith("ci/pipeline.sh layer")}
    assert layer_steps == {(f"//layers/{p.name}/...",) for p in (root / "layers").iterdir()}  # the matrix, rendered
    assert {s.script for s in steps} == {"", "tools/bootstrap.sh", "ci/pipeline/cli.py", ".ci/run"}
    assert {(s.workflow, s.job) for s in steps} == {("ci-cd.yml", "plan"), ("ci-cd.yml", "layer"), ("ci-cd.yml", "full"),
                                                    ("layer5-ci.yml", "layer5"), ("layer7-ci.yml", "layer7")}


@pytest.mark.parametrize("script", [".ci/run", "tools/bootstrap.sh"])
def test_a_missing_script_fails_the_check(tmp_path: Path, script: str) -> None:
    with pytest.raises(workflow.WorkflowError, match=f"runs {script}, which is missing"):
        cli.check_workflows(fake_tree(tmp_path, missing=script), known_packages)


def test_a_layer_bazel_does_not_know_fails_the_check(tmp_path: Path) -> None:
    root = fake_tree(tmp_path)
    with pytest.raises(workflow.WorkflowError, match="bazel query //layers/layer5_refinement/... is empty"):
        cli.check_workflows(root, lambda r, p: [] if "layer5" in p else known_packages(r, p))


@pytest.mark.parametrize("edit", [("image: debian:bookworm", "image: ubuntu:22.04"),
                                  ("options: --privileged", "options: --privileged --user 1000"),
                                  ("ci/pipeline.sh layer 7", "ci/pipeline.sh layer 9"),
                                  ("ci/pipeline.sh layer 7", "bazel test //...")])
def test_a_job_outside_the_container_or_a_stray_line_fails(tmp_path: Path, edit: tuple[str, str]) -> None:
    root = fake_tree(tmp_path)
    path = root / ".github" / "workflows" / "layer7-ci.yml"
    path.write_text(path.read_text().replace(*edit))
    with pytest.raises((workflow.WorkflowError, SystemExit)):
        cli.check_workflows(root, known_packages)


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
