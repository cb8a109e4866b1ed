"""The discovery service's settings: thresholds, windows and collection pace.

Read from a JSON file (``layers/layer1_discovery/discovery.json`` by
default) and checked once at start-up, so a typo fails loudly with the key
that is wrong instead of silently disabling an alert. Thresholds name a
metric (as in ``DataPoint.name``), a comparison (``above``/``below``), a
value and a severity (``info``/``warning``/``critical``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chimera.discovery import artifacts
from chimera.discovery.core import Rule
from chimera.v1 import common_pb2, discovery_pb2

__all__ = ["COMPARISONS", "SEVERITIES", "DiscoveryConfig"]

COMPARISONS: Mapping[str, int] = {
    "above": discovery_pb2.COMPARISON_ABOVE,
    "below": discovery_pb2.COMPARISON_BELOW,
}
SEVERITIES: Mapping[str, int] = {
    "info": common_pb2.SEVERITY_INFO,
    "warning": common_pb2.SEVERITY_WARNING,
    "critical": common_pb2.SEVERITY_CRITICAL,
}
_KEYS = frozenset(
    {
        "collection_interval_ms",
        "window_size",
        "ewma_alpha",
        "alert_retention",
        "top_processes",
        "window_metrics",
        "toolchains",
        "thresholds",
    }
)


@dataclass(frozen=True)
class DiscoveryConfig:
    """Validated settings.

    Attributes:
      collection_interval_ms: pace of the background collection that raises
        the alerts GetAlerts returns; 0 disables it.
      window_size: observations kept per series for window statistics.
      ewma_alpha: smoothing factor of the EWMA, in (0, 1].
      alert_retention: alerts kept for GetAlerts (oldest dropped first).
      top_processes: processes reported by CPU and by memory.
      window_metrics: metrics whose window statistics are added to batches as
        ``<metric>.window.<stat>`` points (stat: mean, min, max, stddev, ewma,
        p50, p95, p99).
      toolchains: executables the toolchain probe looks for on PATH.
      thresholds: the configured threshold rules.
    """

    collection_interval_ms: int = 10000
    window_size: int = 60
    ewma_alpha: float = 0.3
    alert_retention: int = 1000
    top_processes: int = 5
    window_metrics: tuple[str, ...] = ()
    toolchains: tuple[str, ...] = ()
    thresholds: tuple[Rule, ...] = field(default_factory=tuple)

    @classmethod
    def load(cls, path: Path | None = None) -> DiscoveryConfig:
        """Reads and checks a config file (the layer's default when ``path`` is None)."""
        data, source = artifacts.load_json(path, artifacts.DEFAULT_CONFIG)
        return cls.from_mapping(data, where=str(source))

    @classmethod
    def from_mapping(cls, data: Any, where: str = "config") -> DiscoveryConfig:
        if not isinstance(data, dict):
            raise ValueError(f"{where}: must be a JSON object")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}")
        d = cls()
        return cls(
            collection_interval_ms=_int(
                data, "collection_interval_ms", d.collection_interval_ms, 0, 86_400_000, where
            ),
            window_size=_int(data, "window_size", d.window_size, 1, 100_000, where),
            ewma_alpha=_alpha(data.get("ewma_alpha", d.ewma_alpha), where),
            alert_retention=_int(data, "alert_retention", d.alert_retention, 1, 1_000_000, where),
            top_processes=_int(data, "top_processes", d.top_processes, 0, 100, where),
            window_metrics=_names(data, "window_metrics", where),
            toolchains=_names(data, "toolchains", where),
            thresholds=tuple(
                _rule(item, f"{where}: thresholds[{i}]")
                for i, item in enumerate(_list(data, "thresholds", where))
            ),
        )


def _int(data: Mapping[str, Any], key: str, default: int, low: int, high: int, where: str) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{where}: {key} must be an integer in {low}..{high} (got {value!r})")
    return value


def _alpha(value: Any, where: str) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not ok or not 0 < value <= 1:
        raise ValueError(f"{where}: ewma_alpha must be a number in (0, 1] (got {value!r})")
    return float(value)


def _list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{where}: {key} must be a list")
    return value


def _names(data: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _list(data, key, where)
    for i, item in enumerate(items):
        if not isinstance(item, str) or not item:
            raise ValueError(f"{where}: {key}[{i}] must be a non-empty string")
    return tuple(items)


def _rule(item: Any, where: str) -> Rule:
    if not isinstance(item, dict):
        raise ValueError(f"{where}: must be an object")
    unknown = sorted(set(item) - {"metric", "comparison", "value", "severity"})
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}")
    metric = item.get("metric")
    if not isinstance(metric, str) or not metric or len(metric) > 256:
        raise ValueError(f"{where}: metric must be a non-empty string of at most 256 characters")
    comparison = COMPARISONS.get(str(item.get("comparison", "")).lower())
    if comparison is None:
        raise ValueError(f"{where}: comparison must be one of {sorted(COMPARISONS)}")
    severity = SEVERITIES.get(str(item.get("severity", "")).lower())
    if severity is None:
        raise ValueError(f"{where}: severity must be one of {sorted(SEVERITIES)}")
    value = item.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: value must be a finite number (got {value!r})")
    return Rule(metric, comparison, float(value), severity)
