"""The loop page from a real closed-loop summary (the committed fixture): plots written
and linked, figures keyed to the summary, the dashboard's link; bad summaries exit 2."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tools.loop import loop_page
from tools.metrics.report import dashboard, pages

TESTDATA = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera") / "tools/loop/testdata"
FIXTURE = TESTDATA / "closed_loop_summary_fixture.json"
ROLLBACK_FIXTURE = TESTDATA / "closed_loop_rollback_summary_fixture.json"
PNG = b"\x89PNG\r\n\x1a\n"
PLOTS = {f"loop_{family}_{plot}.png" for family in ("weibull", "or")
         for plot in ("generations", "ab_test", "phases", "priority")}


def _summary(path: Path = FIXTURE) -> dict[str, Any]:
    return json.loads(path.read_text())


def _write(tmp_path: Path, data: Any, name: str = "summary.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def _lookup(data: Any, key: str) -> Any:
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page drawn once from the fixture, into a folder that holds a dashboard's index.html."""
    out = tmp_path_factory.mktemp("board")
    (out / "index.html").write_text(pages.document("board", pages.link("#a", "a") + pages.NAV_MARK, "<p id=a></p>"))
    assert loop_page.run(["--summary", str(FIXTURE), "--out", str(out)]) == 0
    return out


def _keyed_cells(page: str, summary: dict[str, Any]) -> dict[str, str]:
    """The page's keyed cells, each checked against the summary value its key names."""
    keyed = dict(re.findall(r'<td data-key="([^"]+)"(?: class="num")?>([^<]*)</td>', page))
    for key, text in keyed.items():
        assert html.unescape(text) == pages.fmt(_lookup(summary, key)), key
    return keyed


def test_page_from_the_loop_summary(drawn: Path) -> None:
    assert {p.name for p in drawn.glob("*.png")} == PLOTS
    for png in drawn.glob("*.png"):
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000
    page = (drawn / "loop.html").read_text()
    assert set(re.findall(r'src="([^"]+)"', page)) == PLOTS
    assert "http" not in page
    summary = _summary()
    keyed = _keyed_cells(page, summary)
    w = "families.weibull."
    for key in (w + "ab_test.p_value", w + "ab_test.baseline_mean_excess_pct", w + "ab_test.candidate_mean_excess_pct",
                w + "ab_test.hedges_g_ci.0", w + "ab_test.decision", w + "resources.cpu_cores",
                w + "strategy.algorithm", w + "phases_s.evolve", w + "evaluations.total",
                w + "evolution.generations.0.best_excess_pct", "scoreboard.rows.1.evolved",
                "scoreboard.rows.0.best_fit", "scoreboard.rows.1.published.funsearch"):
        assert key in keyed, key
    generations = summary["families"]["weibull"]["evolution"]["generations"]
    assert sum(k.startswith(w) and k.endswith(".best_excess_pct") for k in keyed) == len(generations) > 1
    # This fixture's pinned verdicts: Weibull promoted, OR-like inconclusive (rolled back).
    assert '<span class="badge PROMOTE">PROMOTE</span>' in page
    assert '<span class="badge INCONCLUSIVE">INCONCLUSIVE</span>' in page
    assert keyed["scoreboard.rows.1.published.funsearch"] == "0.68"


def test_a_rolled_back_candidate(tmp_path: Path) -> None:
    assert loop_page.run(["--summary", str(ROLLBACK_FIXTURE), "--out", str(tmp_path)]) == 0
    page = (tmp_path / "loop.html").read_text()
    keyed = _keyed_cells(page, _summary(ROLLBACK_FIXTURE))
    w = "families.weibull."
    assert keyed[w + "ab_test.decision"] == "ROLL_BACK" and keyed[w + "outcome.action"] == "rolled back to the baseline"
    assert float(keyed[w + "ab_test.candidate_mean_excess_pct"]) > float(keyed[w + "ab_test.baseline_mean_excess_pct"])
    assert '<span class="badge ROLL_BACK">ROLL_BACK</span>' in page
    assert "not run" in page  # no OR-like run: the OR3 row has no evolved figure


def test_the_main_jobs_summary_with_closed_loop(tmp_path: Path) -> None:
    wrapped = _write(tmp_path, {"ok": True, "phases_s": {"plan": 1.0}, "closed_loop": _summary()}, "main_job_summary.json")
    out = tmp_path / "board"
    assert loop_page.run(["--summary", str(wrapped), "--out", str(out)]) == 0
    page = (out / "loop.html").read_text()
    assert 'data-key="closed_loop.families.weibull.ab_test.p_value"' in page
    assert 'data-key="phases_s.' not in page  # the loop's figures, not the main job's


def test_the_dashboard_beside_it_gets_a_link_once(drawn: Path) -> None:
    index = drawn / "index.html"
    assert pages.add_nav_link(index, dashboard.LOOP_PAGE, "again")  # a second run adds nothing
    assert index.read_text().count(f'href="{dashboard.LOOP_PAGE}"') == 1
    assert 'href="index.html"' in (drawn / "loop.html").read_text()
    assert not pages.add_nav_link(drawn / "absent.html", dashboard.LOOP_PAGE, "x")


def test_a_failed_run_still_gets_its_page(tmp_path: Path) -> None:
    failed = {"ok": False, "reason": "Execution EvaluateBatch: UNAVAILABLE", "phases_s": {},
              "families": {"weibull": {"phases_s": {"baseline": 3.5}}}}
    assert loop_page.run(["--summary", str(_write(tmp_path, failed)), "--out", str(tmp_path / "b")]) == 0
    page = (tmp_path / "b" / "loop.html").read_text()
    assert "EvaluateBatch: UNAVAILABLE" in page and "NOT DECIDED" in page
    assert {p.name for p in (tmp_path / "b").glob("*.png")} == {"loop_weibull_phases.png"}


def _broken(name: str) -> Any:
    summary = _summary()
    weibull = summary["families"]["weibull"]
    if name == "p_value":
        weibull["ab_test"]["p_value"] = "tiny"
    elif name == "observations":
        weibull["ab_test"]["observations"]["candidate"].pop()
    elif name == "generations":
        weibull["evolution"]["generations"][2] = {"generation": 2}
    elif name == "phases":
        weibull["phases_s"]["evolve"] = None
    elif name == "scoreboard":
        summary["scoreboard"]["rows"][0]["best_fit"] = None
    elif name == "ok":
        del summary["ok"]
    elif name == "wrapped":
        return {"closed_loop": [summary]}
    elif name == "other":
        return {"build_timestamp": "2026-12-01T00:00:00Z", "layers": {}}
    elif name == "list":
        return [summary]
    return summary


@pytest.mark.parametrize("case, named", [
    ("p_value", "families.weibull.ab_test.p_value"), ("observations", "families.weibull.ab_test.observations"),
    ("generations", "families.weibull.evolution.generations[2].best_excess_pct"),
    ("phases", "families.weibull.phases_s.evolve"), ("scoreboard", "scoreboard.rows[0].best_fit"),
    ("ok", "summary.ok"), ("wrapped", "closed_loop: expected a JSON object"),
    ("other", "neither a closed-loop summary"), ("list", "summary: expected a JSON object"),
])
def test_a_bad_summary_exits_2_naming_the_field(tmp_path: Path, capsys: Any, case: str, named: str) -> None:
    out = tmp_path / "board"
    assert loop_page.run(["--summary", str(_write(tmp_path, _broken(case))), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("loop_page: bad summary: ") and named in err and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize("content", [None, "{not json", "\xff\xfe"])
def test_a_missing_or_unreadable_file_exits_2(tmp_path: Path, capsys: Any, content: str | None) -> None:
    path = tmp_path / "summary.json"
    if content is not None:
        path.write_bytes(content.encode("latin-1"))
    assert loop_page.run(["--summary", str(path), "--out", str(tmp_path / "board")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"loop_page: bad summary: {path}") and err.count("\n") == 1
