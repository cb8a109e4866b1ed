"""The closed loop's page in a real browser (pytest-playwright driving Debian's chromium),
drawn from a real loop summary (the committed fixture) the way the main job carries it
(under `closed_loop`), beside a build dashboard: every figure loads, every keyed
figure in the tables is the summary's, the dashboard links to the page and back,
no console error; a full-page screenshot is saved as a test output."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from tools.loop import loop_page
from tools.metrics.report import dashboard, main
from tools.metrics.tests.chromium import browser_type_launch_args, images, record_errors, requires_chromium, screenshot

RUNFILES = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera")
FIXTURE = RUNFILES / "tools/loop/testdata/closed_loop_summary_fixture.json"
SAMPLE = RUNFILES / "tools/metrics/testdata/sample/local"
_chromium = requires_chromium()
__all__ = ["browser_type_launch_args"]  # the fixture, imported so pytest uses Debian's chromium


def _lookup(data: Any, key: str) -> Any:
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def _matches(text: str, value: Any) -> bool:
    """What a cell shows is the JSON value: numbers at four significant digits."""
    if isinstance(value, bool):
        return text == ("yes" if value else "no")
    if isinstance(value, (int, float)):
        return math.isclose(float(text), value, rel_tol=5e-4, abs_tol=1e-300)
    if isinstance(value, (list, dict)) and not value:
        return text == ("none" if isinstance(value, list) else "-")
    if isinstance(value, list):
        parts = text.split(", ")
        return len(parts) == len(value) and all(_matches(t, v) for t, v in zip(parts, value))
    if isinstance(value, dict):
        pairs = dict(part.split("=", 1) for part in text.split(", "))
        return pairs.keys() == value.keys() and all(_matches(pairs[k], v) for k, v in value.items())
    return text == str(value)


@pytest.fixture
def pages_on_disk(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The dashboard first (as tools/main.sh does), then the loop page beside it."""
    assert main.run(["--profile", str(SAMPLE / "profile.json"), "--bep", str(SAMPLE / "bep.json"),
                     "--aspect-dir", str(SAMPLE / "aspect"), "--out", str(tmp_path), "--no-history"]) == 0
    summary = json.loads(FIXTURE.read_text())
    main_job = tmp_path / "main_job_summary.json"
    main_job.write_text(json.dumps({"ok": True, "closed_loop": summary}))
    assert loop_page.run(["--summary", str(main_job), "--out", str(tmp_path / "dashboard")]) == 0
    return tmp_path / "dashboard", {"closed_loop": summary}


def test_loop_page_renders_with_the_summarys_numbers(page: Any, pages_on_disk: tuple[Path, dict[str, Any]]) -> None:
    board, data = pages_on_disk
    summary = data["closed_loop"]
    errors = record_errors(page)

    page.goto((board / "index.html").as_uri())
    page.click(f'nav a[href="{dashboard.LOOP_PAGE}"]')
    page.wait_for_load_state("load")
    assert page.url.endswith("/" + loop_page.PAGE)

    shown_images = images(page)
    assert {i["src"] for i in shown_images} == {
        f"loop_{family}_{plot}.png" for family in summary["families"]
        for plot in ("generations", "ab_test", "phases", "priority")
    }
    assert [i["src"] for i in shown_images if not i["ok"]] == []

    cells = page.eval_on_selector_all("td[data-key]", "tds => tds.map(td => [td.dataset.key, td.textContent])")
    keyed = dict(cells)
    assert len(keyed) == len(cells) > 40  # each figure once
    for key, text in keyed.items():
        assert _matches(text, _lookup(data, key)), (key, text)
    weibull = summary["families"]["weibull"]
    ab = weibull["ab_test"]
    w = "closed_loop.families.weibull."
    for key in ("p_value", "baseline_mean_excess_pct", "candidate_mean_excess_pct", "hedges_g", "alpha"):
        assert f"{w}ab_test.{key}" in keyed
    assert keyed[f"{w}ab_test.decision"] == ab["decision"]
    generations = page.eval_on_selector_all("#generations-weibull tbody tr", "trs => trs.length")
    assert generations == len(weibull["evolution"]["generations"])
    assert set(weibull["phases_s"]) == {k.split(".")[-1] for k in keyed if k.startswith(f"{w}phases_s.")}
    badges = page.eval_on_selector_all(".badge", "bs => bs.map(b => b.textContent)")
    assert badges == [s["outcome"]["decision"] for s in summary["families"].values()]
    rows = page.eval_on_selector_all("#scoreboard tbody tr", "trs => trs.length")
    assert rows == len(summary["scoreboard"]["rows"])

    assert errors == []
    assert screenshot(page, "loop_page.png").stat().st_size > 10_000
    page.click('nav a[href="index.html"]')  # and back to the dashboard
    page.wait_for_load_state("load")
    assert page.url.endswith("/index.html") and errors == []
