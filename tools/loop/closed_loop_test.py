"""The closed loop through the main job on a small budget, all eight layers as real
subprocess servers (the plan's steps run first on the same stack, with a small workload)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats

import closed_loop
import main_job
from tools.main import stack

#: A small budget: 3 generations of 12 genomes on 8 training instances (and a
#: plan workload of 2 tasks per genome before the loop).
SMALL = [
    "--population", "12", "--generations", "3", "--train-instances", "8", "--jobs", "30",
    "--tasks", "2",
]


def _run(tmp_path: Path, *extra: str) -> tuple[int, dict, dict]:
    """The main job; (exit status, the summary's closed_loop key, the whole summary)."""
    summary_path = tmp_path / "out" / "summary.json"
    status = main_job.main(
        [*SMALL, "--run-dir", str(tmp_path / "run"), "--summary-out", str(summary_path), *extra]
    )
    summary = json.loads(summary_path.read_text())
    return status, summary["closed_loop"], summary


def _assert_layers_stopped_cleanly(summary: dict) -> None:
    layers = summary["layers"]
    assert sorted(layers) == sorted(layer.name for layer in stack.LAYERS)
    assert len(layers) == 8
    assert all(info["exit_status"] == 0 for info in layers.values()), layers


def test_evolved_genome_beats_the_baseline_on_held_out_instances(tmp_path: Path) -> None:
    status, summary, job = _run(tmp_path)
    assert status == 0 and job["ok"] and summary["ok"], job["reason"]
    _assert_layers_stopped_cleanly(job)
    # The plan ran first on the same stack, on its own module slot.
    assert job["execution"]["module_name"] == "packer" != closed_loop.DEFAULT_LOOP_MODULE

    # Layer 5 saw the baseline's KPI stream (through its subscription) and called a plateau.
    baseline = summary["baseline"]
    assert baseline["kpi_reports_at_layer5"] >= baseline["stream_instances"] == 64
    trigger = summary["trigger"]
    assert trigger["should_evolve"] and trigger["trigger"] == "PLATEAU", trigger
    assert "plateau" in trigger["reason"]

    # Layer 8 granted the run; the population stayed within the grant.
    grant, evolution = summary["resources"], summary["evolution"]
    assert grant["max_population"] >= evolution["population"] == 12
    assert grant["wall_time_seconds"] > 0 and grant["released"] == "JOB_STATUS_FINISHED"
    assert grant["obtained_by"].startswith("layer 7 BeginRun")
    # Layer 6's GA arm is what ran, and its outcome went back to layer 6.
    strategy = summary["strategy"]
    assert strategy["algorithm"] == "GENETIC_ALGORITHM" and strategy["reason"]
    assert strategy["arm"] in strategy["ran"] and strategy["problem_class"] == "packer_quality/d5-8"
    reported = strategy["outcome"]
    assert reported["reported"] and reported["arm"] == strategy["arm"]
    assert reported["arm_pulls"][strategy["arm"]] == strategy["arm_pulls"][strategy["arm"]] + 1
    assert 0 <= reported["reward"] <= 1 and reported["evaluations"] == summary["evaluations"]["evolution"]

    # Every generation was scored by real layer-4 runs: 12 genomes x 8 instances each.
    generations = evolution["generations"]
    assert [g["evaluations"] for g in generations] == [96, 192, 288]
    assert evolution["failed_pairs"] == 0
    assert generations[-1]["best_fitness"] >= generations[0]["best_fitness"]

    # Layer 7 deployed its best as the canary; the held-out A/B test promoted it.
    canary, ab, outcome = summary["canary"], summary["ab_test"], summary["outcome"]
    assert canary["genome_id"] == evolution["best_genome_id"]
    assert ab["holdout_seeds"][0] >= closed_loop.HOLDOUT_SEED
    assert ab["samples_used_per_arm"] == ab["planned_samples_per_arm"] >= 10
    assert ab["evaluations"] == 2 * ab["planned_samples_per_arm"]
    assert ab["p_value"] < 0.01, ab
    assert ab["candidate_mean_quality"] > ab["baseline_mean_quality"]
    # Layer 5's Welch test agrees with scipy's on the observations the loop recorded.
    welch = stats.ttest_ind(
        ab["observations"]["candidate"], ab["observations"]["baseline"], equal_var=False
    )
    assert ab["p_value"] == pytest.approx(welch.pvalue, rel=1e-6, abs=1e-300)
    assert ab["t_statistic"] == pytest.approx(welch.statistic, rel=1e-9)
    assert ab["effect_size_cohens_d"] > 0 and ab["hedges_g_ci"][0] > 0
    assert outcome["decision"] == "PROMOTE"
    assert outcome["active_version"] == canary["version"] != baseline["version"]
    used = summary["evaluations"]
    assert used["total"] == used["baseline_stream"] + used["evolution"] + used["ab_test"]
    assert set(summary["phases_s"]) == {
        "baseline", "trigger", "grant", "strategy", "evolve", "canary", "ab_test"
    }
    assert summary["elapsed_s"] >= sum(summary["phases_s"].values())
    assert summary["reason"] == ""


def test_a_worse_candidate_is_rolled_back(tmp_path: Path) -> None:
    status, summary, job = _run(tmp_path, "--force-candidate", "bad-fixture", "--generations", "1")
    assert status == 0 and summary["ok"], job["reason"]
    _assert_layers_stopped_cleanly(job)
    canary, ab, outcome = summary["canary"], summary["ab_test"], summary["outcome"]
    assert canary["genome_id"] == closed_loop.BAD_FIXTURE_ID
    assert ab["candidate_mean_quality"] < ab["baseline_mean_quality"]
    assert ab["p_value"] < 0.01 and ab["decision"] == "ROLL_BACK", ab
    assert outcome["action"] == "rolled back to the baseline"
    assert outcome["active_version"] == summary["baseline"]["version"] != canary["version"]


def test_losing_layer_6_mid_run_is_reported_and_a_restart_resumes_from_the_store(
    tmp_path: Path,
) -> None:
    def kill_evolution_when_evolving(phase: str, layers: stack.LayerStack) -> None:
        if phase == "evolve":
            layers.servers["layer6_evolution"].process.kill()

    # Unsupervised (--max-restarts 0): the loss ends the run.
    args = main_job.parse_args([*SMALL, "--run-dir", str(tmp_path / "run"), "--max-restarts", "0"])
    outcome = main_job.run(args, kill_evolution_when_evolving)
    job, summary = outcome.summary, outcome.summary["closed_loop"]
    # Generation 0 was scored and told to layer 7; layer 6 was gone for its operators.
    assert outcome.status == 1 and not job["ok"] and not summary["ok"]
    # The stack's clients wait for a layer that is down (a supervised one comes
    # back); unsupervised, the call waits out its deadline.
    assert summary["reason"].startswith("Evolution SuggestOperators: DEADLINE_EXCEEDED"), summary
    assert job["reason"] == f"closed loop: {summary['reason']}"
    assert summary["resources"]["released"] == "JOB_STATUS_FINISHED"
    assert job["layers"]["layer6_evolution"]["exit_status"] != 0
    assert job["layers"]["layer7_genetics"]["exit_status"] == 0

    # A restart on the same run directory continues from layer 7's stored generation 1.
    status, summary, job = _run(tmp_path)
    assert status == 0 and summary["ok"], job["reason"]
    evolution = summary["evolution"]
    assert evolution["resumed_from_generation"] == 1
    assert [g["generation"] for g in evolution["generations"]] == [1, 2]
    assert summary["outcome"]["decision"] == "PROMOTE"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--population", "0"], "--population must be > 0"),
        (["--generations", "-1"], "--generations must be > 0"),
        (["--alpha", "0.7"], "--alpha must be in (0, 0.5]"),
        (["--power", "1"], "--power must be in (0, 1)"),
        (["--train-instances", "65"], "--train-instances must be <= 64"),
        (["--population", "256", "--train-instances", "64"], "must be <= 4096"),
        (["--window", "2"], "--window must be >= 3"),
        (["--module-name", " "], "--module-name must not be empty"),
        (["--loop-module-name", ""], "--loop-module-name must not be empty"),
        (["--loop-module-name", "packer"], "--loop-module-name must differ"),
        (["--force-candidate", "worse"], "invalid choice"),
        (["--jobs", "many"], "invalid int value"),
    ],
)
def test_bad_flags_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main_job.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
