"""The loop summary's schema at both ends: real summaries keep it; a summary that breaks
it is refused where it is written (the last good file stays, the bad one is kept beside
it) and where it is read, with one error naming the field."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tools.loop import loop_summary
from tools.loop.loop_summary import SummaryError

TESTDATA = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera") / "tools/loop/testdata"
FIXTURES = sorted(TESTDATA.glob("*.json"))


def _fixture() -> dict[str, Any]:
    return json.loads((TESTDATA / "closed_loop_summary_fixture.json").read_text())


def test_recorded_summaries_and_a_loop_that_did_not_run_keep_the_schema() -> None:
    assert len(FIXTURES) == 2
    for path in FIXTURES:
        loop_summary.check(json.loads(path.read_text()))
    # The main job's closed_loop when its plan failed.
    loop_summary.check({"ok": False, "reason": "not run: the plan failed", "families": {}, "phases_s": {}})


@pytest.mark.parametrize("breakage, named", [
    (lambda s: s["families"]["or"]["ab_test"].__setitem__("p_value", "tiny"),
     "closed_loop.families.or.ab_test.p_value: expected a number, got 'tiny'"),
    (lambda s: s["families"]["or"]["ab_test"].__setitem__("p_value", 1.5),
     "closed_loop.families.or.ab_test.p_value: 1.5 is greater than the maximum of 1"),
    (lambda s: s["families"]["weibull"]["evolution"]["generations"][1].pop("evaluations"),
     "closed_loop.families.weibull.evolution.generations[1].evaluations: is required"),
    (lambda s: s["scoreboard"].pop("measured_by"), "closed_loop.scoreboard.measured_by: is required"),
    (lambda s: s["families"]["or"]["ab_test"]["hedges_g_ci"].append(0.0),
     "closed_loop.families.or.ab_test.hedges_g_ci: "),
    (lambda s: s["families"]["weibull"]["ab_test"]["observations"]["baseline"].pop(),
     "closed_loop.families.weibull.ab_test.observations: expected two lists of equal length"),
    (lambda s: s.__setitem__("families", []), "closed_loop.families: expected a JSON object, got a list"),
])
def test_a_bad_summary_is_refused_at_write_and_the_last_good_file_stays(
    tmp_path: Path, breakage: Any, named: str
) -> None:
    path = tmp_path / "main_job_summary.json"
    good = {"ok": True, "closed_loop": _fixture()}
    loop_summary.write(path, good)
    assert json.loads(path.read_text()) == good
    bad = {"ok": False, "closed_loop": _fixture()}
    breakage(bad["closed_loop"])
    with pytest.raises(SummaryError) as refused:
        loop_summary.write(path, bad)
    message = str(refused.value)
    assert message.startswith(named) and "\n" not in message
    assert json.loads(path.read_text()) == good  # not replaced
    kept = tmp_path / "main_job_summary.invalid.json"
    assert f"kept as {kept}" in message and json.loads(kept.read_text()) == bad  # not lost
    assert sorted(p.name for p in tmp_path.iterdir()) == [kept.name, path.name]


def test_a_bad_summary_is_refused_at_read(tmp_path: Path) -> None:
    summary = _fixture()
    del summary["families"]["weibull"]["phases_s"]
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    with pytest.raises(SummaryError, match=r"^summary\.families\.weibull\.phases_s: is required$"):
        loop_summary.load(path)
    path.write_text(json.dumps({"closed_loop": summary}))
    with pytest.raises(SummaryError, match=r"^closed_loop\.families\.weibull\.phases_s: is required$"):
        loop_summary.load(path)


def test_a_document_without_a_loop_is_written_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "out" / "summary.json"
    loop_summary.write(path, {"ok": False, "reason": "startup failed"})
    assert json.loads(path.read_text()) == {"ok": False, "reason": "startup failed"}
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]
