"""attach puts both languages' figures into a report, replaces old ones, carries a
report's figures over, and rejects bad input with exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tools.metrics.coverage import attach

RUNFILES = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera")
BASELINE = RUNFILES / "ci/metrics_baseline.json"


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def report(tmp_path: Path) -> Path:
    data = json.loads(BASELINE.read_text())
    for layer in data["layers"].values():
        layer["coverage_percent"] = 1.0  # stale figures: must not survive
        layer["python_coverage_percent"] = 1.0
    return _write(tmp_path / "report.json", data)


def test_combined_figure_weighs_statements_and_lines(tmp_path: Path, report: Path) -> None:
    python = _write(tmp_path / "py.json", {"layers": {"layer1": {"statements": 300, "covered": 270,
                                                                  "coverage_percent": 90.0}}})
    rust = _write(tmp_path / "rust.json", {"layers": {"layer1": {"lines": 100, "covered": 50, "coverage_percent": 50.0},
                                                      "layer2": {"lines": 10, "covered": 10, "coverage_percent": 100.0}}})
    out = tmp_path / "out.json"
    assert attach.main(["--report", str(report), "--coverage", str(python), "--rust-coverage", str(rust),
                        "--out", str(out)]) == 0
    layers = json.loads(out.read_text())["layers"]
    assert layers["layer1"]["coverage_percent"] == 80.0  # (270 + 50) / (300 + 100)
    assert layers["layer1"]["python_coverage_percent"] == 90.0
    assert layers["layer1"]["rust_coverage_percent"] == 50.0
    assert layers["layer2"]["coverage_percent"] == 100.0
    assert "python_coverage_percent" not in layers["layer2"]  # the stale 1.0 is gone
    assert "coverage_percent" not in layers["layer3"]
    assert json.loads(out.read_text())["inputs"]["rust_coverage"]["path"] == str(rust)


def test_from_report_carries_the_figures_over(tmp_path: Path, report: Path) -> None:
    source = json.loads(report.read_text())
    source["layers"]["layer4"].update(coverage_percent=93.5, rust_coverage_percent=97.0, rust_coverage_measured=700)
    source.setdefault("inputs", {})["rust_coverage"] = {"path": "/ci/rust_coverage.json", "sha256": "ab", "bytes": 2}
    fresh = json.loads(BASELINE.read_text())
    for layer in fresh["layers"].values():
        for key in attach.COVERAGE_KEYS:
            layer.pop(key, None)
    out = tmp_path / "out.json"
    assert attach.main(["--report", str(_write(tmp_path / "fresh.json", fresh)),
                        "--from-report", str(_write(tmp_path / "old.json", source)), "--out", str(out)]) == 0
    layer4 = json.loads(out.read_text())["layers"]["layer4"]
    assert (layer4["coverage_percent"], layer4["rust_coverage_percent"], layer4["rust_coverage_measured"]) == (93.5, 97.0, 700)
    assert json.loads(out.read_text())["inputs"]["rust_coverage"]["path"] == "/ci/rust_coverage.json"


@pytest.mark.parametrize("case", ["nothing", "both", "unknown_layer", "not_json"])
def test_bad_input_is_exit_2(tmp_path: Path, report: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    rust = {"layers": {"layer1": {"lines": 10, "covered": 5, "coverage_percent": 50.0}}}
    args = {
        "nothing": [],
        "both": ["--from-report", str(report), "--rust-coverage", str(_write(tmp_path / "r.json", rust))],
        "unknown_layer": ["--rust-coverage", str(_write(tmp_path / "r.json", {"layers": {"layer9": rust["layers"]["layer1"]}}))],
        "not_json": ["--coverage", str(tmp_path / "bad.json")],
    }[case]
    (tmp_path / "bad.json").write_text("{")
    assert attach.main(["--report", str(report), *args, "--out", str(tmp_path / "out.json")]) == 2
    assert "coverage-attach: bad input" in capsys.readouterr().err
