"""The dashboard draws every plot as a PNG and an index.html that links them by relative path."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tools.metrics.report import main

SAMPLE = Path(os.environ.get("TEST_SRCDIR", ".")) / os.environ.get("TEST_WORKSPACE", "chimera") / "tools/metrics/testdata/sample"
PNG = b"\x89PNG\r\n\x1a\n"


def test_dashboard_from_sample(tmp_path: Path) -> None:
    board = tmp_path / "dashboard"
    for scenario in ("local", "remote_cache"):
        base = SAMPLE / scenario
        assert main.run(["--profile", str(base / "profile.json"), "--bep", str(base / "bep.json"),
                         "--aspect-dir", str(base / "aspect"), "--exec-log", str(base / "exec_log.json"),
                         "--out", str(tmp_path)]) == 0
        if scenario == "local":
            assert "loop.html" not in (board / "index.html").read_text()  # no loop page beside it: no link
            (board / "loop.html").write_text("<!DOCTYPE html><title>loop</title>")
    names = {p.name for p in board.glob("*.png")}
    assert names == {"layer_times.png", "top_targets_time.png", "top_targets_size.png", "cache.png",
                     "critical_path.png", "trends.png", "layer_trends.png"}
    for png in board.glob("*.png"):
        assert png.read_bytes()[:8] == PNG and png.stat().st_size > 5000
    page = (board / "index.html").read_text()
    assert set(re.findall(r'src="([^"]+)"', page)) == names  # relative links: opens from disk
    assert "1/8 layers built and tested" in page
    assert "http" not in page  # no server, no remote assets
    assert page.index('id="overview"') < page.index('id="trends"') < page.index('id="layers"')
    assert page.count('href="loop.html"') == 1  # the loop page beside it is linked
