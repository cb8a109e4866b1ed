"""Bounded per-version KPI windows.

Each (module slot, deployment version) keeps its most recent reports in a
window of fixed capacity (the oldest is dropped beyond it), and at most
``max_versions`` versions are kept (the least recently written one is dropped
whole beyond that), so memory stays bounded however long the stream runs.
Reports with a non-finite value anywhere (latency or a workload metric) are
rejected and counted, never stored: one NaN would poison every mean.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass

from chimera.v1 import common_pb2

__all__ = ["BUILTIN_METRICS", "IngestResult", "KpiBuffers", "SeriesKey", "metric_value"]

#: Metrics read from KpiReport fields; any other name is a key of KpiReport.metrics.
BUILTIN_METRICS = ("latency_ms", "fuel_consumed", "memory_peak_bytes")

#: (module_name, module_version) of one window.
SeriesKey = tuple[str, int]


def metric_value(report: common_pb2.KpiReport, metric: str) -> float | None:
    """The report's value of ``metric``; None when the report does not carry it."""
    if metric in BUILTIN_METRICS:
        return float(getattr(report, metric))
    if metric in report.metrics:
        return float(report.metrics[metric])
    return None


def is_finite(report: common_pb2.KpiReport) -> bool:
    return math.isfinite(report.latency_ms) and all(
        math.isfinite(v) for v in report.metrics.values()
    )


def report_time(report: common_pb2.KpiReport) -> float:
    """Seconds since the epoch of ``recorded_at``."""
    return report.recorded_at.seconds + report.recorded_at.nanos * 1e-9


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    evicted: int
    rejected_non_finite: int
    buffered: int
    #: Reports whose task id the version's window already holds: a batch layer 4
    #: ran again after a restart (the caller's batch_id makes the ids repeat).
    duplicates: int = 0


class KpiBuffers:
    """Thread-safe windows of KPI reports, one per (module, version).

    A window keeps each task id once: a report whose id it already holds is
    counted as a duplicate and dropped, so an evaluation repeated after layer 4
    restarted (same batch_id, so the same task ids) is not counted twice.
    """

    def __init__(self, capacity_per_version: int = 1000, max_versions: int = 256) -> None:
        if capacity_per_version < 1 or max_versions < 1:
            raise ValueError("capacity_per_version and max_versions must be at least 1")
        self._capacity = capacity_per_version
        self._max_versions = max_versions
        self._windows: OrderedDict[SeriesKey, deque[common_pb2.KpiReport]] = OrderedDict()
        self._task_ids: dict[SeriesKey, set[str]] = {}
        self._buffered = 0
        self._lock = threading.Lock()

    @property
    def capacity_per_version(self) -> int:
        return self._capacity

    def ingest(self, reports: Iterable[common_pb2.KpiReport]) -> IngestResult:
        accepted = evicted = rejected = duplicates = 0
        with self._lock:
            for report in reports:
                if not is_finite(report):
                    rejected += 1
                    continue
                key = (report.module_name, report.module_version)
                window = self._windows.get(key)
                if window is None:
                    window = self._windows[key] = deque()
                    self._task_ids[key] = set()
                    if len(self._windows) > self._max_versions:
                        dropped_key, dropped = self._windows.popitem(last=False)
                        del self._task_ids[dropped_key]
                        evicted += len(dropped)
                        self._buffered -= len(dropped)
                else:
                    self._windows.move_to_end(key)
                ids = self._task_ids[key]
                if report.task_id in ids:
                    duplicates += 1
                    continue
                window.append(report)
                ids.add(report.task_id)
                accepted += 1
                self._buffered += 1
                if len(window) > self._capacity:
                    ids.discard(window.popleft().task_id)
                    evicted += 1
                    self._buffered -= 1
            return IngestResult(accepted, evicted, rejected, self._buffered, duplicates)

    def buffered(self) -> int:
        with self._lock:
            return self._buffered

    def versions(self) -> list[SeriesKey]:
        with self._lock:
            return list(self._windows)

    def reports(
        self, module_name: str = "", module_version: int = 0, window: int = 0
    ) -> list[common_pb2.KpiReport]:
        """The matching reports in time order (empty name: all modules; version 0: all
        versions), the last ``window`` of them when ``window`` > 0."""
        with self._lock:
            chosen = [
                r
                for (name, version), reports in self._windows.items()
                if (not module_name or name == module_name)
                and (not module_version or version == module_version)
                for r in reports
            ]
        chosen.sort(key=report_time)
        return chosen[-window:] if window > 0 else chosen
