"""Counters, gauges and histograms rendered in the Prometheus text format (0.0.4).

A ``MetricsRegistry`` is an ordinary object owned by the server (no module
globals), so tests and several servers in one process never share numbers.
The RPC interceptor registers its own metrics in it and layers add theirs::

    tasks = registry.counter("layer4_tasks_total", "Tasks by final status.", ("status",))
    tasks.labels(status="done").inc()
    depth = registry.gauge("layer4_queue_depth", "Tasks waiting in the queue.")
    depth.set(3)

All updates take a lock; they are cheap next to an RPC.
"""

from __future__ import annotations

import bisect
import math
import re
import threading
from collections.abc import Iterable, Sequence
from typing import TypeVar

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

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

LabelValues = tuple[str, ...]


class _Metric:
    """Shared name/label handling; subclasses hold one value per label set."""

    kind = ""

    def __init__(self, name: str, help_text: str, label_names: Sequence[str]) -> None:
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in label_names:
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r} for metric {name!r}")
        if len(set(label_names)) != len(label_names):
            raise ValueError(f"duplicate label names for metric {name!r}")
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.label_names):
            raise ValueError(
                f"metric {self.name!r} takes labels {list(self.label_names)} (got {sorted(labels)})"
            )
        return tuple(str(labels[name]) for name in self.label_names)

    def _unlabelled(self) -> LabelValues:
        if self.label_names:
            raise ValueError(f"metric {self.name!r} needs labels {list(self.label_names)}")
        return ()

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {_escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        yield from self._samples()

    def _samples(self) -> Iterable[str]:
        raise NotImplementedError

    def _label_text(self, values: LabelValues, extra: tuple[tuple[str, str], ...] = ()) -> str:
        pairs = tuple(zip(self.label_names, values)) + extra
        if not pairs:
            return ""
        return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in pairs) + "}"


_M = TypeVar("_M", bound=_Metric)


class _ValueChild:
    """A counter or gauge bound to one label set."""

    def __init__(self, metric: _ValueMetric, key: LabelValues) -> None:
        self._metric = metric
        self._key = key

    def inc(self, amount: float = 1.0) -> None:
        self._metric._add(self._key, amount)

    def dec(self, amount: float = 1.0) -> None:
        self._metric._gauge_only("dec")
        self._metric._add(self._key, -amount)

    def set(self, value: float) -> None:
        self._metric._gauge_only("set")
        self._metric._set(self._key, value)


class _ValueMetric(_Metric):
    def __init__(self, name: str, help_text: str, label_names: Sequence[str]) -> None:
        super().__init__(name, help_text, label_names)
        self._values: dict[LabelValues, float] = {}

    def labels(self, **labels: str) -> _ValueChild:
        return _ValueChild(self, self._key(labels))

    def inc(self, amount: float = 1.0) -> None:
        self._add(self._unlabelled(), amount)

    def value(self, **labels: str) -> float:
        """Current value for a label set (0 if never touched); for tests and dashboards."""
        key = self._key(labels) if labels or self.label_names else ()
        with self._lock:
            return self._values.get(key, 0.0)

    def _gauge_only(self, operation: str) -> None:
        if self.kind != "gauge":
            raise ValueError(f"{operation}() is only for gauges; {self.name!r} is a {self.kind}")

    def _add(self, key: LabelValues, amount: float) -> None:
        if self.kind == "counter" and not amount >= 0:
            raise ValueError(f"counter {self.name!r} can only increase (got {amount!r})")
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def _set(self, key: LabelValues, value: float) -> None:
        with self._lock:
            self._values[key] = float(value)

    def _samples(self) -> Iterable[str]:
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            yield f"{self.name}{self._label_text(key)} {_format_value(value)}"


class Counter(_ValueMetric):
    """A monotonically increasing count (name it ``*_total``)."""

    kind = "counter"


class Gauge(_ValueMetric):
    """A value that goes up and down (queue depth, pool size)."""

    kind = "gauge"

    def dec(self, amount: float = 1.0) -> None:
        self._add(self._unlabelled(), -amount)

    def set(self, value: float) -> None:
        self._set(self._unlabelled(), value)


class _HistogramChild:
    def __init__(self, metric: Histogram, key: LabelValues) -> None:
        self._metric = metric
        self._key = key

    def observe(self, value: float) -> None:
        self._metric._observe(self._key, value)


class _Series:
    __slots__ = ("counts", "sum", "count")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * buckets
        self.sum = 0.0
        self.count = 0


class Histogram(_Metric):
    """Observations counted into cumulative ``le`` buckets, plus sum and count."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str],
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, label_names)
        if "le" in self.label_names:
            raise ValueError(f"histogram {name!r} cannot use the label 'le'")
        bounds = [float(b) for b in buckets if b != math.inf]
        if not bounds or any(not math.isfinite(b) for b in bounds) or bounds != sorted(set(bounds)):
            raise ValueError(f"histogram {name!r} needs finite, strictly increasing buckets")
        self.buckets = tuple(bounds)
        self._series: dict[LabelValues, _Series] = {}

    def labels(self, **labels: str) -> _HistogramChild:
        return _HistogramChild(self, self._key(labels))

    def observe(self, value: float) -> None:
        self._observe(self._unlabelled(), value)

    def count(self, **labels: str) -> int:
        """Number of observations for a label set; for tests."""
        key = self._key(labels) if labels or self.label_names else ()
        with self._lock:
            series = self._series.get(key)
            return 0 if series is None else series.count

    def _observe(self, key: LabelValues, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series(len(self.buckets) + 1)
            series.counts[index] += 1
            series.sum += value
            series.count += 1

    def _samples(self) -> Iterable[str]:
        with self._lock:
            items = [(k, list(s.counts), s.sum, s.count) for k, s in sorted(self._series.items())]
        for key, counts, total, count in items:
            cumulative = 0
            for bound, bucket_count in zip((*self.buckets, math.inf), counts):
                cumulative += bucket_count
                labels = self._label_text(key, (("le", _format_value(bound)),))
                yield f"{self.name}_bucket{labels} {cumulative}"
            yield f"{self.name}_sum{self._label_text(key)} {_format_value(total)}"
            yield f"{self.name}_count{self._label_text(key)} {count}"


class MetricsRegistry:
    """Owns a set of metrics and renders them for ``/metrics``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, _Metric] = {}

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        return self._add(Counter(name, help_text, labels))

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        return self._add(Gauge(name, help_text, labels))

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        return self._add(Histogram(name, help_text, labels, buckets))

    def get(self, name: str) -> _Metric | None:
        with self._lock:
            return self._metrics.get(name)

    def render(self) -> str:
        """The whole registry in Prometheus text exposition format."""
        with self._lock:
            metrics = sorted(self._metrics.values(), key=lambda m: m.name)
        lines = [line for metric in metrics for line in metric.render()]
        return "\n".join(lines) + "\n" if lines else ""

    def _add(self, metric: _M) -> _M:
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name!r} is already registered")
            self._metrics[metric.name] = metric
        return metric


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
