"""The bin-packing loop through the main job on a small budget, all eight layers as real
subprocess servers (the plan's steps run first on the same stack, with a small workload).

Each run's decision is pinned: the evolved genome is promoted (its held-out win
re-checked with scipy's paired tests), the bad fixture is rolled back, and a
restart after losing layer 7 resumes its GA from the stored generation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy import stats

import closed_loop
import main_job
from tools.main import stack

#: A small budget: Weibull instances of 500 items, 16 measured generations of 48
#: genomes on 4 training instances (a plan workload of 2 tasks per genome first).
SMALL = [
    "--families", "weibull", "--items", "500", "--population", "48", "--generations", "16",
    "--train-instances", "4", "--tasks", "2", "--generalisation-instances", "1", "--window", "8",
]


def _run(tmp_path: Path, *extra: str) -> tuple[int, dict, dict]:
    """The main job; (exit status, the summary's closed_loop key, the whole summary)."""
    summary_path = tmp_path / "out" / "summary.json"
    status = main_job.main(
        [*SMALL, "--run-dir", str(tmp_path / "run"), "--summary-out", str(summary_path),
         "--scoreboard-out", str(tmp_path / "out" / "scoreboard.md"), *extra]
    )
    summary = json.loads(summary_path.read_text())
    return status, summary["closed_loop"], summary


def _assert_layers_stopped_cleanly(summary: dict) -> None:
    layers = summary["layers"]
    assert sorted(layers) == sorted(layer.name for layer in stack.LAYERS)
    assert all(info["exit_status"] == 0 for info in layers.values()), layers


def test_evolved_genome_beats_best_fit_on_held_out_instances(tmp_path: Path) -> None:
    status, loop, job = _run(tmp_path, "--screen-generations", "2")
    assert status == 0 and job["ok"] and loop["ok"], job["reason"]
    _assert_layers_stopped_cleanly(job)
    summary = loop["families"]["weibull"]
    assert summary["module_name"] == "binpacking-weibull" != job["execution"]["module_name"]

    # Layer 5 saw Best Fit's KPI stream (through its subscription) and decided to evolve.
    baseline = summary["baseline"]
    assert baseline["kpi_reports_at_layer5"] >= baseline["stream_instances"] == 16
    assert summary["trigger"]["should_evolve"], summary["trigger"]

    # Layer 8 granted the run; the population stayed within the grant; it was released.
    grant, evolution = summary["resources"], summary["evolution"]
    assert grant["max_population"] >= evolution["population"] == 48
    assert grant["released"] == "JOB_STATUS_FINISHED"
    # A fresh bandit explores its first arm; layer 6 ran it ask/tell and heard the outcome.
    strategy = summary["strategy"]
    assert strategy["algorithm"] == "CMA_ES" and strategy["runner"] == "layer 6 StartRun/Step"
    assert strategy["exploration"] and "never tried" in strategy["reason"]
    reported = strategy["outcome"]
    assert reported["reported"] and reported["arm"] == "cma_es"
    assert reported["evaluations"] == summary["evaluations"]["evolution"]

    # Two screened generations (layer 6's twin), then 16 measured by layer 4:
    # 48 genomes x 4 instances each, and the run's best measured once more.
    generations = evolution["generations"]
    assert [g["source"] for g in generations] == ["twin (layer 6 ScreenStep)"] * 2 + ["layer 4 EvaluateBatch"] * 16
    assert evolution["screened_by_twin"] == 96
    assert [g["evaluations"] for g in generations[2:]] == [192 * k for k in range(1, 17)]
    assert summary["evaluations"]["evolution"] == 16 * 192 + 4
    assert evolution["failed_pairs"] == 0
    # The candidate is a layer-4 measurement: no generation's best beat it.
    assert evolution["best_training_excess_pct"] <= min(g["best_excess_pct"] for g in generations[2:])

    # The canary is that genome; the paired held-out test promoted it.
    canary, ab, outcome = summary["canary"], summary["ab_test"], summary["outcome"]
    assert canary["genome_id"] == evolution["best_genome_id"]
    assert canary["parameters"] == evolution["best_parameters"]
    assert ab["design"] == "paired" and ab["holdout"].startswith("weibull/ab_holdout/")
    assert ab["pairs_recorded"] == ab["planned_samples_per_arm"] == ab["samples_used_per_arm"]
    assert ab["candidate_mean_excess_pct"] < ab["baseline_mean_excess_pct"]
    # Layer 5's paired t and Wilcoxon agree with scipy's on the recorded observations.
    candidate, base = ab["observations"]["candidate"], ab["observations"]["baseline"]
    paired = stats.ttest_rel(candidate, base)
    assert ab["p_value"] == pytest.approx(paired.pvalue, rel=1e-6, abs=1e-300)
    assert ab["t_statistic"] == pytest.approx(paired.statistic, rel=1e-9)
    assert ab["wilcoxon_p_value"] == pytest.approx(stats.wilcoxon(candidate, base).pvalue, rel=1e-3)
    assert ab["p_value"] < 0.01 and not ab["guardrails"][0]["breached"]
    assert outcome["decision"] == "PROMOTE"
    assert outcome["active_version"] == canary["version"] != baseline["version"]

    # The scoreboard: both published sets through layer 4, Best Fit and First Fit as published.
    rows = {row["set"]: row for row in loop["scoreboard"]["rows"]}
    assert set(rows) == {"or3", "weibull_5k"}
    for row in rows.values():
        assert round(row["best_fit"], 2) == row["published"]["best_fit"]
        assert round(row["first_fit"], 2) == row["published"]["first_fit"]
    assert rows["weibull_5k"]["evolved_for"] == "weibull" and rows["weibull_5k"]["evolved"] is not None
    assert rows["or3"]["evolved"] is None  # no OR-like run in this job
    table = (tmp_path / "out" / "scoreboard.md").read_text()
    assert "| weibull_5k | 4.23 % | 3.98 % |" in table and "FunSearch: the published figure" in table
    assert {(g["family"], g["items"]) for g in loop["generalisation"]} == {("weibull", 5000), ("weibull", 10000)}


def test_a_worse_candidate_is_rolled_back(tmp_path: Path) -> None:
    status, loop, job = _run(
        tmp_path, "--force-candidate", "bad-fixture", "--generations", "1", "--generalisation-instances", "0"
    )
    assert status == 0 and loop["ok"], job["reason"]
    _assert_layers_stopped_cleanly(job)
    summary = loop["families"]["weibull"]
    canary, ab, outcome = summary["canary"], summary["ab_test"], summary["outcome"]
    assert canary["genome_id"] == closed_loop.BAD_FIXTURE_ID
    assert ab["candidate_mean_excess_pct"] > ab["baseline_mean_excess_pct"]
    assert ab["p_value"] < 0.01 and ab["decision"] == "ROLL_BACK", ab
    assert outcome["action"] == "rolled back to the baseline"
    assert outcome["active_version"] == summary["baseline"]["version"] != canary["version"]
    # The scoreboard's evolved column is the run's best, never the forced fixture.
    weibull = next(r for r in loop["scoreboard"]["rows"] if r["set"] == "weibull_5k")
    assert weibull["evolved"] < 50.0


def test_losing_layer_7_mid_run_is_reported_and_a_restart_resumes_from_the_store(tmp_path: Path) -> None:
    ga = ["--strategy", "layer7_ga", "--generations", "3", "--generalisation-instances", "0"]

    def kill_genetics_when_evolving(phase: str, layers: stack.LayerStack) -> None:
        if phase == "canary":
            layers.servers["layer7_genetics"].process.kill()

    # Unsupervised (--max-restarts 0): the loss of layer 7 ends the run at DeployBest.
    args = main_job.parse_args([*SMALL, *ga, "--run-dir", str(tmp_path / "run"), "--max-restarts", "0"])
    outcome = main_job.run(args, kill_genetics_when_evolving)
    job, loop = outcome.summary, outcome.summary["closed_loop"]
    assert outcome.status == 1 and not job["ok"] and not loop["ok"]
    assert loop["reason"].startswith("Genetics DeployBest:"), loop
    assert job["layers"]["layer7_genetics"]["exit_status"] != 0
    summary = loop["families"]["weibull"]
    assert summary["resources"]["released"] == "JOB_STATUS_FINISHED"
    assert [g["generation"] for g in summary["evolution"]["generations"]] == [0, 1, 2]

    # A restart on the same run directory finds layer 7's stored generation 3 and deploys from it.
    status, loop, job = _run(tmp_path, *ga)
    assert status == 0 and loop["ok"], job["reason"]
    evolution = loop["families"]["weibull"]["evolution"]
    assert evolution["resumed_from_generation"] == 3 and evolution["generations"] == []
    assert loop["families"]["weibull"]["strategy"]["runner"] == "layer 7 RunGeneration"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--population", "0"], "--population must be > 0"),
        (["--train-instances", "-1"], "--train-instances must be >= 0"),
        (["--population", "3"], "--population must be >= 4"),
        (["--generations", "-1"], "--generations must be >= 0"),
        (["--generations", "0", "--screen-generations", "0"], "must be > 0"),
        (["--families", "weibull,gaussian"], "--families must list distinct families"),
        (["--families", "or,or"], "--families must list distinct families"),
        (["--items", "100001"], "--items must be <= 100000"),
        (["--alpha", "0.7"], "--alpha must be in (0, 0.5]"),
        (["--power", "1"], "--power must be in (0, 1)"),
        (["--max-fuel-regression", "0"], "--max-fuel-regression must be in (0, 100]"),
        (["--train-instances", "65"], "--train-instances must be <= 64"),
        (["--population", "256", "--train-instances", "17"], "must be <= 4096"),
        (["--population", "512", "--families", "or"], "(or: 16) must be <= 4096"),
        (["--window", "2"], "--window must be >= 3"),
        (["--strategy", "layer7_ga", "--screen-generations", "2"], "--screen-generations needs a layer-6"),
        (["--strategy", "hill_climbing"], "invalid choice"),
        (["--ab-design", "welch"], "invalid choice"),
        (["--module-name", " "], "--module-name must not be empty"),
        (["--loop-module-prefix", ""], "--loop-module-prefix must not be empty"),
        (["--module-name", "binpacking-x"], "--module-name must not start with --loop-module-prefix"),
        (["--force-candidate", "worse"], "invalid choice"),
        (["--jobs", "many"], "invalid int value"),
    ],
)
def test_bad_flags_exit_2_with_a_message(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main_job.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
