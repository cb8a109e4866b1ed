"""The eight layers as the main job starts them, Debian's prometheus scraping them on
loopback, checked through Prometheus's HTTP API (tools/monitoring/check.py); and the
main job's own ``--prometheus`` on a small budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.main import main_job, stack
from tools.monitoring import check
from tools.host_tools.host_tool import recorded
from tools.monitoring.prometheus import HANDLED, Prometheus
from tools.testing import optional

PROMETHEUS = recorded("prometheus")
BINARY = PROMETHEUS.path
_prometheus = optional.every_test_requires(PROMETHEUS.missing)
ALL = sorted(layer.name for layer in stack.LAYERS)


def test_every_layer_is_up_and_the_counter_moved(tmp_path: Path) -> None:
    assert BINARY is not None
    with stack.layer_stack(tmp_path / "layers", metrics=True) as layers:
        targets = check._layer_targets(layers)
        assert sorted(t.job for t in targets) == ALL and len(ALL) == 8
        with Prometheus.start(BINARY, {t.job: t.metrics_target for t in targets}, tmp_path / "prom") as prom:
            outcome = check.run_checks(prom, targets, check._sources_root(), rpcs=4)
    assert outcome.failures == []
    assert outcome.figures["targets"] == {name: "up" for name in ALL}
    # Each layer's probe (its dashboard row's) moved its counter by exactly the calls sent.
    moved = outcome.figures["handled_moved"]
    assert sorted(moved) == ALL
    assert all(sum(by_code.values()) == 4 for by_code in moved.values()), moved
    scraped = outcome.figures["series_scraped"]
    assert sorted(scraped) == ALL
    assert all(n > 3 for n in scraped.values()), scraped


def test_the_main_job_scrapes_all_eight_layers(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    status = main_job.main([
        "--prometheus", "--summary-out", str(summary_path), "--run-dir", str(tmp_path / "run"),
        "--tasks", "2", "--population", "8", "--generations", "1", "--train-instances", "4",
    ])
    summary = json.loads(summary_path.read_text())
    assert status == 0, summary["reason"]
    monitoring = summary["monitoring"]
    assert monitoring["jobs"] == ALL and monitoring["targets_up_at_start"] == ALL
    assert {job: t["health"] for job, t in monitoring["targets"].items()} == {name: "up" for name in ALL}
    for job, target in monitoring["targets"].items():
        assert target["scrape_url"] == f"http://127.0.0.1:{summary['layers'][job]['metrics_port']}/metrics"
    # The job's own RPCs, as Prometheus scraped them: every layer answered some.
    assert monitoring["counter"] == HANDLED
    assert sorted(monitoring["moved"]) == ALL
    assert all(sum(by_code.values()) > 0 for by_code in monitoring["moved"].values()), monitoring
    # Layer 7 ran one generation (RunGeneration twice: the first population, then the told one).
    assert monitoring["moved"]["layer7_genetics"].get("OK", 0) >= 2
    assert monitoring["exit_status"] == 0
    assert Path(monitoring["config"]).is_file()


def test_a_target_that_is_down_is_reported(tmp_path: Path) -> None:
    assert BINARY is not None
    closed = stack.free_ports(1)[0]  # nothing listens there
    with Prometheus.start(BINARY, {"layer9_absent": f"127.0.0.1:{closed}"}, tmp_path / "prom") as prom:
        with pytest.raises(check.PrometheusError, match="layer9_absent"):
            prom.wait_targets_up({"layer9_absent"}, timeout=3)
