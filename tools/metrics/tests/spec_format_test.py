"""Every build_metrics.json we produce or commit matches the specification's format
(tools/metrics/build_metrics.schema.json), and the schema is that format: it accepts the
specification's own example once its quoted figures are numbers (design.md §4), and it
rejects the key names this report used before."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from tools.metrics.report import aspect, bep, compute, execlog, main, profile, spec_format

RUNFILES = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera")
TESTDATA = RUNFILES / "tools/metrics/testdata"
SPEC_EXAMPLE = TESTDATA / "spec_example.json"
BASELINE = RUNFILES / "ci/metrics_baseline.json"


def _sample_report(scenario: str) -> dict:
    base = TESTDATA / "sample" / scenario
    spawns = execlog.parse(base / "exec_log.json")
    prof = profile.with_executions(profile.parse(base / "profile.json"), execlog.executions(spawns))
    return compute.compute(prof, bep.parse(base / "bep.json"), aspect.load(aspect.find_files(base / "aspect")),
                           spawns=spawns, jobs=2, machine={"nproc": 2})


def _numbers(value: object) -> object:
    """The example with its quoted integers ("42") as numbers."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


def test_specification_example_matches_once_its_numbers_are_numbers() -> None:
    example = json.loads(SPEC_EXAMPLE.read_text())
    quoted = spec_format.problems(example)
    # The example quotes exactly the per-layer times: 8 layers x 2 fields, nothing else.
    assert len(quoted) == 16
    assert all(p.split(":")[0].rsplit(".", 1)[-1] in ("build_time_seconds", "test_time_seconds") for p in quoted)
    assert all("is not of type 'number'" in p for p in quoted)
    assert spec_format.problems(_numbers(example)) == []


@pytest.mark.parametrize("scenario", ["local", "remote_cache"])
def test_reports_from_real_samples_match(scenario: str) -> None:
    report = _sample_report(scenario)
    assert spec_format.problems(report) == []
    assert report["build_timestamp"].endswith("Z")


def test_committed_baseline_matches() -> None:
    assert spec_format.problems(json.loads(BASELINE.read_text())) == []


def test_system_metrics_follow_from_the_layers() -> None:
    report = _sample_report("local")
    layers = report["layers"]
    present = [layer for layer in layers.values() if layer["status"] != "missing"]
    system = report["system_metrics"]
    assert len(present) == system["layers_counted_in_averages"] == 2
    assert system["total_binary_size_mb"] == pytest.approx(sum(layer["binary_size_mb"] for layer in layers.values()))
    assert system["average_build_time_seconds"] == pytest.approx((0.449 + 0.274) / 2, abs=1e-3)
    assert system["average_test_time_seconds"] == pytest.approx((0.472 + 0.297) / 2, abs=1e-3)
    totals = report["total_times"]
    assert totals["test_seconds"] == pytest.approx(0.472 + 0.297)
    assert totals["build_seconds"] >= 0.449 + 0.274  # plus the other groups' actions


@pytest.mark.parametrize("change, where", [
    (lambda r: r.__setitem__("generated_at", r.pop("build_timestamp")), "(top level): 'build_timestamp'"),
    (lambda r: r["total_times"].__setitem__("build_time_seconds", r["total_times"].pop("build_seconds")),
     "total_times: 'build_seconds'"),
    (lambda r: r["system_metrics"].pop("average_test_time_seconds"), "system_metrics: 'average_test_time_seconds'"),
    (lambda r: r["layers"]["layer3"].__setitem__("binary_size_mb", "12"), "layers.layer3.binary_size_mb: '12'"),
    (lambda r: r["layers"].pop("layer8"), "layers: 'layer8'"),
    (lambda r: r["system_metrics"].__setitem__("parallel_build_efficiency", None),
     "system_metrics.parallel_build_efficiency: None"),
    (lambda r: r.__setitem__("build_timestamp", "2026-12-01T10:00:00+00:00"), "build_timestamp:"),
])
def test_departures_are_named(change, where: str) -> None:
    report = _sample_report("local")
    broken = copy.deepcopy(report)
    change(broken)
    found = spec_format.problems(broken)
    assert found and any(p.startswith(where) for p in found), found


def test_cli_fails_when_the_report_would_not_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    real = compute.compute

    def without_timestamp(*args, **kwargs):
        report = real(*args, **kwargs)
        del report["build_timestamp"]
        return report

    monkeypatch.setattr(compute, "compute", without_timestamp)
    base = TESTDATA / "sample" / "local"
    argv = ["--profile", str(base / "profile.json"), "--bep", str(base / "bep.json"),
            "--aspect-dir", str(base / "aspect"), "--out", str(tmp_path), "--no-dashboard", "--no-history"]
    assert main.run(argv) == 1
    assert "'build_timestamp' is a required property" in capsys.readouterr().err
