"""Sliding windows of observations and the derived ``.window.*`` points.

A series is one metric with one set of labels (``cpu.core.utilization``
for core 3). For each configured metric the tracker keeps the last
``window_size`` values of every series and, after each round, asks the Rust
core for the window's statistics, which it returns as extra points named
``<metric>.window.<stat>`` (stat: mean, min, max, stddev, ewma, p50, p95,
p99) with the series' labels plus ``window`` = the number of values used.
Thresholds can then be set on smoothed values (e.g. the CPU EWMA) instead of
single noisy samples.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence

from chimera.discovery.core import DiscoveryCore
from chimera.v1 import discovery_pb2

__all__ = ["WindowTracker"]

_MAX_SERIES = 1024


class WindowTracker:
    """Windows for the series of ``metrics``; thread-safe."""

    def __init__(
        self, core: DiscoveryCore, metrics: Iterable[str], window_size: int, alpha: float
    ) -> None:
        self._core = core
        self._metrics = frozenset(metrics)
        self._size = window_size
        self._alpha = alpha
        self._series: dict[tuple[str, tuple[tuple[str, str], ...]], deque[float]] = {}
        self._units: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        self._lock = threading.Lock()

    def observe(self, points: Sequence[discovery_pb2.DataPoint]) -> list[discovery_pb2.DataPoint]:
        """Adds the tracked points to their windows; returns the derived points."""
        if not self._metrics:
            return []
        touched: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        with self._lock:
            for p in points:
                if p.name not in self._metrics:
                    continue
                key = (p.name, tuple(sorted(p.labels.items())))
                window = self._series.get(key)
                if window is None:
                    if len(self._series) >= _MAX_SERIES:
                        continue
                    window = self._series[key] = deque(maxlen=self._size)
                window.append(p.value)
                self._units[key] = p.unit
                touched.append(key)
            snapshot = {str(i): list(self._series[k]) for i, k in enumerate(touched)}
        if not snapshot:
            return []
        stats = self._core.window_stats(snapshot, self._alpha, self._size)
        derived: list[discovery_pb2.DataPoint] = []
        for i, key in enumerate(touched):
            s = stats[str(i)]
            metric, labels = key
            for stat, value in s.as_dict().items():
                derived.append(
                    discovery_pb2.DataPoint(
                        name=f"{metric}.window.{stat}",
                        value=value,
                        unit=self._units[key],
                        labels={**dict(labels), "window": str(s.count)},
                    )
                )
        return derived
