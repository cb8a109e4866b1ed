"""resources.json: the shipped file loads, mistakes name the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chimera.resources.config import ResourcesConfig


def test_shipped_config_loads() -> None:
    config = ResourcesConfig.load()
    assert config.rates.usd_per_cpu_core_hour > 0
    assert config.grants.population_per_core > 0
    assert config.retention.ended_allocations >= 1


def test_edited_file_is_used(tmp_path: Path) -> None:
    path = tmp_path / "rates.json"
    path.write_text(json.dumps({"rates": {"usd_per_gpu_hour": 3}}))
    config = ResourcesConfig.load(path)
    assert config.rates.usd_per_gpu_hour == 3.0
    assert config.rates.usd_per_cpu_core_hour == 0.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rates": {"usd_per_cpu_core_hour": -1}}, "rates.usd_per_cpu_core_hour must be finite"),
        ({"rates": {"usd_per_cpu": 1}}, "rates: unknown keys ['usd_per_cpu']"),
        ({"rates": {"usd_per_gpu_hour": "2"}}, "rates.usd_per_gpu_hour must be a number"),
        ({"grants": {"population_per_core": 1.5}}, "grants.population_per_core must be an integer"),
        ({"retention": {"finished_jobs": 0}}, "retention.finished_jobs must be an integer >= 1"),
        ({"pool": {}}, "unknown keys ['pool']"),
        ([], "must be a JSON object"),
    ],
)
def test_mistakes_name_the_key(data: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        ResourcesConfig.from_mapping(data, "cfg")
    assert message in str(err.value)


def test_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{")
    with pytest.raises(ValueError, match="broken.json"):
        ResourcesConfig.load(path)
