"""The regression gate passes a report against itself, fails deliberately inflated
reports (size, time), ignores small or cached timing noise and rejects bad input."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from tools.metrics.gate import gate
from tools.metrics.report import aspect, bep, compute, execlog, profile

RUNFILES = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera")
SAMPLE = RUNFILES / "tools/metrics/testdata/sample/local"
BASELINE = RUNFILES / "ci/metrics_baseline.json"


@pytest.fixture(scope="module")
def sample_report() -> dict:
    prof = profile.parse(SAMPLE / "profile.json")
    spawns = execlog.parse(SAMPLE / "exec_log.json")
    return compute.compute(profile.with_executions(prof, execlog.executions(spawns)), bep.parse(SAMPLE / "bep.json"),
                           aspect.load(aspect.find_files(SAMPLE / "aspect")), spawns=spawns, jobs=2)


def _run(tmp_path: Path, baseline: dict, report: dict, *flags: str) -> int:
    b, r = tmp_path / "baseline.json", tmp_path / "report.json"
    b.write_text(json.dumps(baseline))
    r.write_text(json.dumps(report))
    return gate.run(["--baseline", str(b), "--report", str(r), *flags])


def test_passes_on_itself(tmp_path: Path, sample_report: dict) -> None:
    assert _run(tmp_path, sample_report, sample_report) == 0


def test_committed_baseline_passes_on_itself_and_fails_inflated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = json.loads(BASELINE.read_text())
    assert gate.run(["--baseline", str(BASELINE), "--report", str(BASELINE)]) == 0
    inflated = copy.deepcopy(baseline)
    gated = [n for n, layer in baseline["layers"].items() if layer["status"] != "missing"]
    assert gated, "the committed baseline should have at least one built layer"
    for name in gated:
        inflated["layers"][name]["binary_size_mb"] = baseline["layers"][name]["binary_size_mb"] * 2 + 1
        inflated["layers"][name]["test_time_seconds"] = baseline["layers"][name]["test_time_seconds"] * 3 + 60
    assert _run(tmp_path, baseline, inflated) == 1
    assert "REGRESSION" in capsys.readouterr().out


def test_size_growth_fails_and_names_the_target(tmp_path: Path, sample_report: dict, capsys: pytest.CaptureFixture[str]) -> None:
    bigger = copy.deepcopy(sample_report)
    bigger["layers"]["layer1"]["binary_size_mb"] = 0.0056  # +12%
    bigger["targets"]["//layers/layer1_alpha:blob"]["output_bytes"] = 5600
    assert _run(tmp_path, sample_report, bigger, "--max-size-growth-pct", "10") == 1
    out = capsys.readouterr().out
    assert "REGRESSION: layer1.binary_size_mb: 0.005 -> 0.0056" in out
    assert "//layers/layer1_alpha:blob: 0.005 -> 0.0056" in out
    assert _run(tmp_path, sample_report, bigger, "--max-size-growth-pct", "15") == 0


def test_time_needs_ratio_and_margin(tmp_path: Path, sample_report: dict) -> None:
    slower = copy.deepcopy(sample_report)
    slower["layers"]["layer1"]["build_time_seconds"] = 0.449 * 3  # x3 but only +0.9 s
    assert _run(tmp_path, sample_report, slower) == 0  # default margin: 10 s
    assert _run(tmp_path, sample_report, slower, "--min-time-delta-seconds", "0.5") == 1
    assert _run(tmp_path, sample_report, slower, "--min-time-delta-seconds", "0.5", "--max-time-ratio", "4") == 0


def test_cached_build_time_and_new_layers_are_not_gated(tmp_path: Path, sample_report: dict,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    later = copy.deepcopy(sample_report)
    later["layers"]["layer1"]["status"] = "cached"
    later["layers"]["layer1"]["build_time_seconds"] = 1000.0
    later["layers"]["layer5"] = {"status": "success", "build_time_seconds": 99.0, "test_time_seconds": 9.0,
                                 "binary_size_mb": 50.0}
    assert _run(tmp_path, sample_report, later) == 0
    assert "layer5: new layer" in capsys.readouterr().out


@pytest.mark.parametrize("content", ["{not json", "[]", '{"layers": {"layer1": {"binary_size_mb": "big"}}}'])
def test_bad_input_exits_2(tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert gate.run(["--baseline", str(bad), "--report", str(BASELINE)]) == 2
    assert gate.run(["--baseline", str(BASELINE), "--report", str(tmp_path / "absent.json")]) == 2
    assert "bad input" in capsys.readouterr().err


def test_coverage_drop_beyond_two_points_fails(tmp_path: Path, sample_report: dict,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    base = copy.deepcopy(sample_report)
    base["layers"]["layer1"]["coverage_percent"] = 85.0
    small, large = copy.deepcopy(base), copy.deepcopy(base)
    small["layers"]["layer1"]["coverage_percent"] = 83.5  # -1.5 points: noted
    large["layers"]["layer1"]["coverage_percent"] = 82.5  # -2.5 points: fails
    assert _run(tmp_path, base, small) == 0
    assert "note: layer1.coverage_percent: 85 -> 83.5" in capsys.readouterr().out
    assert _run(tmp_path, base, large) == 1
    assert "REGRESSION: layer1.coverage_percent: 85 -> 82.5 (-2.50 points (limit 2))" in capsys.readouterr().out
    without = copy.deepcopy(sample_report)  # a run without coverage is not gated on it
    assert _run(tmp_path, base, without) == 0


def test_rust_drop_fails_even_when_the_combined_figure_holds(tmp_path: Path, sample_report: dict,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    base = copy.deepcopy(sample_report)
    base["layers"]["layer1"].update(coverage_percent=90.0, python_coverage_percent=92.0, rust_coverage_percent=86.0)
    now = copy.deepcopy(base)
    now["layers"]["layer1"].update(coverage_percent=89.0, rust_coverage_percent=83.0)  # Rust -3, combined -1
    assert _run(tmp_path, base, now) == 1
    out = capsys.readouterr().out
    assert "note: layer1.coverage_percent: 90 -> 89" in out
    assert "REGRESSION: layer1.rust_coverage_percent: 86 -> 83 (-3.00 points (limit 2))" in out
    now["layers"]["layer1"]["rust_coverage_percent"] = 84.0  # -2 points exactly: allowed
    assert _run(tmp_path, base, now) == 0
    del now["layers"]["layer1"]["rust_coverage_percent"]  # measured, but no Rust figure: fails
    assert _run(tmp_path, base, now) == 1
    assert "REGRESSION: layer1.rust_coverage_percent: 86 -> 0 (measured in the baseline, missing" in capsys.readouterr().out


def test_committed_baseline_gates_every_layers_coverage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = json.loads(BASELINE.read_text())
    for name in gate.LAYERS:
        layer = baseline["layers"][name]
        for metric in gate.COVERAGE_METRICS:
            assert 0 < layer[metric] <= 100, f"the baseline has no {metric} for {name} (ci/coverage.sh --update-baseline)"
        assert layer["python_coverage_measured"] > 0 and layer["rust_coverage_measured"] > 0
    for name in gate.LAYERS:
        dropped = copy.deepcopy(baseline)
        dropped["layers"][name]["coverage_percent"] -= 2.01
        assert _run(tmp_path, baseline, dropped) == 1, name
        assert f"REGRESSION: {name}.coverage_percent" in capsys.readouterr().out
        dropped["layers"][name]["coverage_percent"] += 0.02  # -1.99 points: passes
        assert _run(tmp_path, baseline, dropped) == 0, name


def test_a_vanished_layer_fails_until_the_baseline_drops_it(tmp_path: Path, sample_report: dict,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert sample_report["layers"]["layer1"]["status"] != "missing"
    vanished = copy.deepcopy(sample_report)
    del vanished["layers"]["layer1"]
    assert _run(tmp_path, sample_report, vanished) == 1
    assert "REGRESSION: layer1: layer vanished from the report (unless intended: refresh" in capsys.readouterr().out
    assert _run(tmp_path, vanished, vanished) == 0  # the same change refreshed the baseline


@pytest.mark.parametrize("metric", gate.COUNT_METRICS)
def test_fewer_targets_or_tests_fail_until_the_baseline_counts_them(tmp_path: Path, sample_report: dict, metric: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    counted = sample_report["layers"]["layer1"][metric]
    assert counted > 0
    fewer = copy.deepcopy(sample_report)
    fewer["layers"]["layer1"][metric] = counted - 1
    assert _run(tmp_path, sample_report, fewer) == 1
    assert f"REGRESSION: layer1.{metric}: {counted} -> {counted - 1} (1 fewer (unless intended" in capsys.readouterr().out
    more = copy.deepcopy(sample_report)
    more["layers"]["layer1"][metric] = counted + 1
    assert _run(tmp_path, sample_report, more) == 0  # more is never a regression
    assert _run(tmp_path, fewer, fewer) == 0  # the same change refreshed the baseline


def test_the_committed_baseline_counts_every_layers_targets_and_tests() -> None:
    baseline = json.loads(BASELINE.read_text())
    for name in gate.LAYERS:
        for metric in gate.COUNT_METRICS:
            assert baseline["layers"][name][metric] > 0, f"{name}.{metric}"
