"""A server's metrics: prometheus_client metrics in a registry the server owns.

Each ``MetricsRegistry`` wraps its own ``prometheus_client.CollectorRegistry`` (never
the library's global one), so tests and several servers in one process never share
numbers. The RPC interceptor registers its metrics in it and layers add theirs::

    tasks = registry.counter("layer4_tasks_total", "Tasks by final status.", ("status",))
    tasks.labels(status="done").inc()
    depth = registry.gauge("layer4_queue_depth", "Tasks waiting in the queue.")
    depth.set(3)

The factories return prometheus_client's own ``Counter``, ``Gauge`` and ``Histogram``;
``tools/monitoring`` reads the names from these calls to check the dashboards.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.validation import enable_legacy_validation

__all__ = [
    "DEFAULT_BUCKETS",
    "Counter",
    "Gauge",
    "Histogram",
    "MetricsRegistry",
]

DEFAULT_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

_M = TypeVar("_M", Counter, Gauge, Histogram)

# Chimera exports the classic series its dashboards and alerts name: no extra
# `<counter>_created` / `<histogram>_created` series, and only names the classic text
# format can carry (a UTF-8 name would be escaped into a different one on scrape).
# Both are process-wide switches of the library.
disable_created_metrics()
enable_legacy_validation()


class MetricsRegistry:
    """One server's metrics; ``collectors`` is what ``/metrics`` serves."""

    def __init__(self) -> None:
        self.collectors = CollectorRegistry(auto_describe=True)
        self._series: set[str] = set()

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        """A counter exported as ``name`` (which must end in ``_total``)."""
        if not name.endswith("_total"):
            # prometheus_client would export it as name + "_total".
            raise ValueError(f"counter {name!r} must be named *_total")
        return self._exports(Counter(name, help_text, _distinct(name, labels), registry=self.collectors), name)

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        return self._exports(Gauge(name, help_text, _distinct(name, labels), registry=self.collectors), name)

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        metric = Histogram(name, help_text, _distinct(name, labels), registry=self.collectors, buckets=buckets)
        return self._exports(metric, *(name + suffix for suffix in ("_bucket", "_count", "_sum")))

    def sample(self, name: str, **labels: str) -> float:
        """One exported sample's value, 0 for a label set never touched; for tests.

        Raises:
          KeyError: no metric in this registry exports ``name``.
        """
        if name not in self._series:
            raise KeyError(f"no metric exports {name!r} in this registry")
        value = self.collectors.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def render(self) -> str:
        """The whole registry in the Prometheus text format (0.0.4)."""
        return generate_latest(self.collectors).decode("utf-8")

    def _exports(self, metric: _M, *series: str) -> _M:
        self._series.update(series)
        return metric


def _distinct(name: str, labels: Sequence[str]) -> Sequence[str]:
    # prometheus_client accepts ("a", "a") and would print the label twice.
    if len(set(labels)) != len(labels):
        raise ValueError(f"metric {name!r} names a label twice: {list(labels)}")
    return labels
