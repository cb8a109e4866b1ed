"""The thresholds/collection config: the shipped file loads, mistakes name their key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimera.discovery.config import DiscoveryConfig


def rule(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "metric": "x", "comparison": "above", "value": 1, "severity": "info"
    }
    return {**base, **changes}


def test_shipped_config_loads() -> None:
    config = DiscoveryConfig.load()
    assert config.window_size >= 1
    assert 0 < config.ewma_alpha <= 1
    assert any(t.metric == "memory.utilization" for t in config.thresholds)
    assert {t.severity for t in config.thresholds} == {1, 2, 3}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"window_size": 0}, "window_size"),
        ({"ewma_alpha": 1.5}, "ewma_alpha"),
        ({"unknown": 1}, "unknown keys"),
        ({"thresholds": [rule(comparison="sideways")]}, "comparison"),
        ({"thresholds": [rule(value="1")]}, "value"),
        ({"thresholds": [rule(severity="fatal")]}, "severity"),
        ({"thresholds": [rule(metric="")]}, "metric"),
        ({"thresholds": [rule(colour="red")]}, "unknown keys"),
        ({"window_metrics": ["ok", 3]}, "window_metrics[1]"),
        ([], "JSON object"),
    ],
)
def test_bad_configs_name_the_problem(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        DiscoveryConfig.from_mapping(data)


def test_load_reports_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        DiscoveryConfig.load(path)
    path.write_text(json.dumps({"collection_interval_ms": 250}))
    assert DiscoveryConfig.load(path).collection_interval_ms == 250
