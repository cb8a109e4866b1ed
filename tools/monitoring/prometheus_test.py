"""Layers 1..N as the main job starts them, Debian's prometheus scraping them on
loopback, checked through Prometheus's HTTP API (tools/monitoring/check.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.main import stack
from tools.monitoring import check
from tools.monitoring.prometheus import Prometheus, find_binary

BINARY = find_binary()
pytestmark = pytest.mark.skipif(
    BINARY is None, reason="Debian's prometheus is not installed (apt-get install prometheus); CI installs it")


def test_every_layer_is_up_and_the_counter_moved(tmp_path: Path) -> None:
    assert BINARY is not None
    with stack.layer_stack(tmp_path / "layers", metrics=True) as layers:
        targets = check._layer_targets(layers)
        assert len(targets) == len(stack.LAYERS)
        with Prometheus.start(BINARY, {t.job: t.metrics_target for t in targets}, tmp_path / "prom") as prom:
            outcome = check.run_checks(prom, targets, check._sources_root(), rpcs=4)
    assert outcome.failures == []
    assert outcome.figures["targets"] == {layer.name: "up" for layer in stack.LAYERS}
    moved = outcome.figures["handled_moved"]
    assert sorted(moved) == sorted(layer.name for layer in stack.LAYERS)
    assert all(sum(by_code.values()) == 4 for by_code in moved.values()), moved
    assert all(n > 3 for n in outcome.figures["series_scraped"].values())


def test_a_target_that_is_down_is_reported(tmp_path: Path) -> None:
    assert BINARY is not None
    closed = stack.free_ports(1)[0]  # nothing listens there
    with Prometheus.start(BINARY, {"layer9_absent": f"127.0.0.1:{closed}"}, tmp_path / "prom") as prom:
        with pytest.raises(check.PrometheusError, match="layer9_absent"):
            prom.wait_targets_up({"layer9_absent"}, timeout=3)
