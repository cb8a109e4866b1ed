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
_chromium = requires_chromium()
__all__ = ["browser_type_launch_args"]  # the fixture, imported so pytest uses Debian's chromium


def shown(text: str, value: float, rel_tol: float = 5e-4) -> bool:
    """`text` ("12.3", "12.3 s", "45 ms", "0.0123 MB") is `value` at the precision shown."""
    number, _, unit = text.partition(" ")
    scale = 1e-3 if unit == "ms" else 1.0
    digits = number.split(".")[1] if "." in number else ""
    step = 10.0 ** -len(digits) * scale  # half a unit of the last digit shown
    return math.isclose(float(number) * scale, value, rel_tol=rel_tol, abs_tol=step / 2 + 1e-12)


@pytest.fixture
def dashboard(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    coverage = tmp_path / "coverage.json"  # layer1's Python coverage, so the cards show some
    coverage.write_text(json.dumps({"layers": {"layer1": {"coverage_percent": 91.25, "statements": 80, "covered": 73}}}))
    for scenario in ("local", "remote_cache"):  # two reports: the trends plots have a history
        base = SAMPLE / scenario
        assert main.run(["--profile", str(base / "profile.json"), "--bep", str(base / "bep.json"),
                         "--aspect-dir", str(base / "aspect"), "--exec-log", str(base / "exec_log.json"),
                         "--out", str(tmp_path), "--coverage", str(coverage)]) == 0
    return tmp_path / "dashboard" / "index.html", json.loads((tmp_path / "build_metrics.json").read_text())


def test_dashboard_renders_with_the_reports_numbers(page: Any, dashboard: tuple[Path, dict[str, Any]]) -> None:
    index, report = dashboard
    errors = record_errors(page)
    page.goto(index.as_uri())

    shown_images = images(page)
    assert len(shown_images) == 7
    assert [i["src"] for i in shown_images if not i["ok"]] == []

    # The overview first: one card per layer, before any table.
    headings = page.eval_on_selector_all("h2, h3", "hs => hs.map(h => h.textContent)")
    assert headings[0] == "Overview" and headings.index("Trends") < headings.index("Layers")
    cards = page.eval_on_selector_all(".card", """cs => cs.map(c => ({layer: c.dataset.layer,
        badge: c.querySelector('.badge').textContent,
        figures: Object.fromEntries([...c.querySelectorAll('dt')].map(dt => [dt.textContent, dt.nextElementSibling.textContent]))}))""")
    by_layer = {c["layer"]: c for c in cards}
    assert set(report["layers"]) <= set(by_layer)
    for name, layer in report["layers"].items():
        card = by_layer[name]
        assert card["badge"] == layer["status"]
        if layer["status"] == "missing":  # no targets: nothing to show but that
            assert card["figures"] == {"targets": "0"} and layer["targets"] == 0
            continue
        assert shown(card["figures"]["build"], layer["build_time_seconds"], 0)
        assert shown(card["figures"]["test"], layer["test_time_seconds"], 0)
        assert shown(card["figures"]["size"], layer["binary_size_mb"], 5e-3)
        assert card["figures"]["tests passed"] == f"{layer.get('tests_passed', 0)}/{layer['tests']}"
        assert card["figures"].get("coverage") == (
            f"{layer['coverage_percent']:.1f} %" if "coverage_percent" in layer else None)
    assert by_layer["layer1"]["figures"]["coverage"] == "91.2 %"
    tiles = dict(page.eval_on_selector_all(".tile", "ts => ts.map(t => [t.querySelector('span').textContent, t.querySelector('b').textContent])"))
    assert tiles["status"] == report["project_status"]
    assert shown(tiles["wall time"], report["total_times"]["wall_time_seconds"], 0)
    assert shown(tiles["remote cache hits"].removesuffix(" %"), 100 * report["cache"]["hit_rate"], 0)

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
