"""The build dashboard in a real browser (pytest-playwright driving Debian's chromium):
every figure loads, the overview cards and the layer table show the report's numbers,
every link resolves, the page logs no console error; a full-page screenshot is saved
as a test output."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from tools.metrics.report import main
from tools.metrics.tests.chromium import browser_type_launch_args, images, record_errors, requires_chromium, screenshot

SAMPLE = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera") / "tools/metrics/testdata/sample"
pytestmark = requires_chromium
__all__ = ["browser_type_launch_args"]  # the fixture, imported so pytest uses Debian's chromium


def shown(text: str, value: float) -> bool:
    """`text` is `value` at the page's precision (four significant digits)."""
    return math.isclose(float(text.split()[0]), value, rel_tol=5e-4, abs_tol=1e-9)


@pytest.fixture
def dashboard(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    for scenario in ("local", "remote_cache"):  # two reports: the trends plots have a history
        base = SAMPLE / scenario
        assert main.run(["--profile", str(base / "profile.json"), "--bep", str(base / "bep.json"),
                         "--aspect-dir", str(base / "aspect"), "--exec-log", str(base / "exec_log.json"),
                         "--out", str(tmp_path)]) == 0
    return tmp_path / "dashboard" / "index.html", json.loads((tmp_path / "build_metrics.json").read_text())


def test_dashboard_renders_with_the_reports_numbers(page: Any, dashboard: tuple[Path, dict[str, Any]]) -> None:
    index, report = dashboard
    errors = record_errors(page)
    page.goto(index.as_uri())

    shown_images = images(page)
    assert len(shown_images) == 7
    assert [i["src"] for i in shown_images if not i["ok"]] == []

    # The overview first: one card per layer, before any table.
    headings = page.eval_on_selector_all("h2", "hs => hs.map(h => h.textContent)")
    assert headings[0] == "Overview" and headings.index("Trends") < headings.index("Layers")
    cards = page.eval_on_selector_all(".card", """cs => cs.map(c => ({layer: c.dataset.layer,
        badge: c.querySelector('.badge').textContent,
        figures: Object.fromEntries([...c.querySelectorAll('dt')].map(dt => [dt.textContent, dt.nextElementSibling.textContent]))}))""")
    by_layer = {c["layer"]: c for c in cards}
    assert set(report["layers"]) <= set(by_layer)
    for name, layer in report["layers"].items():
        card = by_layer[name]
        assert card["badge"] == layer["status"]
        assert card["figures"]["build"] == f"{layer['build_time_seconds']:.1f} s"
        assert card["figures"]["test"] == f"{layer['test_time_seconds']:.1f} s"
        assert card["figures"]["size"] == f"{layer['binary_size_mb']:.2f} MB"
        assert card["figures"]["tests passed"] == f"{layer.get('tests_passed', 0)}/{layer['tests']}"
    tiles = dict(page.eval_on_selector_all(".tile", "ts => ts.map(t => [t.querySelector('span').textContent, t.querySelector('b').textContent])"))
    assert tiles["status"] == report["project_status"]
    assert tiles["wall time"] == f"{report['total_times']['wall_time_seconds']:.1f} s"

    rows = page.eval_on_selector_all("#layers tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")
    table = {row[0]: row for row in rows}
    for name, layer in report["layers"].items():
        status, build_s, test_s, size_mb = table[name][1:5]
        assert status == layer["status"]
        assert shown(build_s, layer["build_time_seconds"])
        assert shown(test_s, layer["test_time_seconds"])
        assert shown(size_mb, layer["binary_size_mb"])

    # No broken link: in-page anchors exist, files lie beside the page (no loop page here).
    hrefs = page.eval_on_selector_all("a", "as => as.map(a => a.getAttribute('href'))")
    for href in hrefs:
        if href.startswith("#"):
            assert page.query_selector(href) is not None, href
        else:
            assert (index.parent / href).is_file(), href
    assert "loop.html" not in hrefs
    assert errors == []
    assert screenshot(page, "build_dashboard.png").stat().st_size > 10_000
