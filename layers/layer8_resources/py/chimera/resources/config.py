"""The layer's settings: ``layers/layer8_resources/resources.json``, the file to edit.

* ``rates``: US dollars per unit and hour, the five ``chimera.v1.CostRates``
  fields (``usd_per_cpu_core_hour``, ``usd_per_memory_gib_hour``,
  ``usd_per_gpu_hour``, ``usd_per_gpu_memory_gib_hour``,
  ``usd_per_storage_gib_hour``); each finite and >= 0, missing ones are 0.
* ``grants``: ``population_per_core`` and ``population_per_gpu``, how large a
  population a granted job may run per core and per accelerator.
* ``retention``: ``ended_allocations`` and ``finished_jobs`` kept for
  ListAllocations / GetJob after they end (at least 1 each).

The file is checked at start-up; a mistake fails with the key at fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from chimera.resources import artifacts
from chimera.resources.core import Rates

__all__ = ["GrantLimits", "ResourcesConfig", "Retention"]


@dataclass(frozen=True)
class GrantLimits:
    population_per_core: int = 256
    population_per_gpu: int = 8192


@dataclass(frozen=True)
class Retention:
    ended_allocations: int = 1000
    finished_jobs: int = 1000


@dataclass(frozen=True)
class ResourcesConfig:
    rates: Rates = Rates()
    grants: GrantLimits = GrantLimits()
    retention: Retention = Retention()

    @classmethod
    def load(cls, path: Path | None = None) -> ResourcesConfig:
        data, source = artifacts.load_json(path, artifacts.CONFIG)
        return cls.from_mapping(data, str(source))

    @classmethod
    def from_mapping(cls, data: Any, where: str = "resources config") -> ResourcesConfig:
        top = _object(data, where, {"rates", "grants", "retention"})
        rates = _object(top.get("rates", {}), f"{where}: rates", _names(Rates))
        grants = _object(top.get("grants", {}), f"{where}: grants", _names(GrantLimits))
        retention = _object(top.get("retention", {}), f"{where}: retention", _names(Retention))
        return cls(
            Rates(**{k: _rate(v, f"{where}: rates.{k}") for k, v in rates.items()}),
            GrantLimits(**{k: _count(v, f"{where}: grants.{k}", 0) for k, v in grants.items()}),
            Retention(**{k: _count(v, f"{where}: retention.{k}", 1) for k, v in retention.items()}),
        )


def _names(kind: type) -> set[str]:
    return {f.name for f in fields(kind)}


def _object(value: Any, where: str, keys: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must be a JSON object")
    unknown = sorted(set(value) - keys)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (known: {sorted(keys)})")
    return value


def _rate(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where} must be a number (got {value!r})")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where} must be finite and >= 0 (got {value!r})")
    return float(value)


def _count(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{where} must be an integer >= {low} (got {value!r})")
    return value
