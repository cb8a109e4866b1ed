"""The build dashboard in a real browser (pytest-playwright driving Debian's chromium):
every figure loads, the layer table's numbers are the report's, the page logs no
console error; a full-page screenshot is saved as a test output."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tools.metrics.report import main

SAMPLE = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera") / "tools/metrics/testdata/sample"
CHROMIUM = shutil.which("chromium") or shutil.which("/usr/bin/chromium")
OUTPUTS = Path(os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR", "."))
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium); Playwright's download is unreachable")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    # Debian's chromium instead of Playwright's own build; its sandbox needs user
    # namespaces the test sandbox does not give.
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "headless": True,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]}


@pytest.fixture
def dashboard(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    for scenario in ("local", "remote_cache"):  # two reports: the trends plot has a history
        base = SAMPLE / scenario
        assert main.run(["--profile", str(base / "profile.json"), "--bep", str(base / "bep.json"),
                         "--aspect-dir", str(base / "aspect"), "--exec-log", str(base / "exec_log.json"),
                         "--out", str(tmp_path)]) == 0
    return tmp_path / "dashboard" / "index.html", json.loads((tmp_path / "build_metrics.json").read_text())


def test_dashboard_renders_with_the_reports_numbers(page: Any, dashboard: tuple[Path, dict[str, Any]]) -> None:
    index, report = dashboard
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(index.as_uri())

    images = page.eval_on_selector_all(
        "img", "els => els.map(e => ({src: e.getAttribute('src'), complete: e.complete, width: e.naturalWidth}))")
    assert len(images) == 6
    broken = [i["src"] for i in images if not (i["complete"] and i["width"] > 0)]
    assert broken == []

    rows = page.eval_on_selector_all(
        "h2:text('Layers') + table tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")
    shown = {row[0]: row for row in rows}
    assert set(report["layers"]) <= set(shown)
    for name, layer in report["layers"].items():
        status, build_s, test_s, size_mb = shown[name][1:5]
        assert status == layer["status"]
        assert float(build_s) == layer["build_time_seconds"]
        assert float(test_s) == layer["test_time_seconds"]
        assert float(size_mb) == layer["binary_size_mb"]
    assert report["project_status"] in page.inner_text("body")
    assert errors == []
    page.screenshot(path=str(OUTPUTS / "build_dashboard.png"), full_page=True)
    assert (OUTPUTS / "build_dashboard.png").stat().st_size > 10_000
