"""Bounded per-version KPI windows."""

from __future__ import annotations

import math

from google.protobuf.timestamp_pb2 import Timestamp

from chimera.refinement.buffers import KpiBuffers, metric_value
from chimera.v1 import common_pb2


def report(i: int, module: str = "packer", version: int = 1, **metrics: float) -> common_pb2.KpiReport:
    return common_pb2.KpiReport(
        task_id=f"t{i}",
        module_name=module,
        module_version=version,
        latency_ms=float(i),
        fuel_consumed=10 * i,
        status=common_pb2.RUN_OUTCOME_SUCCESS,
        metrics=metrics,
        recorded_at=Timestamp(seconds=1_700_000_000 + i),
    )


def test_each_version_keeps_its_latest_reports() -> None:
    buffers = KpiBuffers(capacity_per_version=5, max_versions=10)
    first = buffers.ingest(report(i) for i in range(8))
    assert (first.accepted, first.evicted, first.buffered) == (8, 3, 5)
    buffers.ingest(report(100 + i, version=2) for i in range(2))
    assert [r.task_id for r in buffers.reports("packer", 1)] == ["t3", "t4", "t5", "t6", "t7"]
    assert [r.task_id for r in buffers.reports("packer", 2)] == ["t100", "t101"]
    assert len(buffers.reports("packer")) == 7 and buffers.buffered() == 7
    assert [r.task_id for r in buffers.reports("packer", window=2)] == ["t100", "t101"]


def test_the_least_recently_written_version_goes_first() -> None:
    buffers = KpiBuffers(capacity_per_version=10, max_versions=2)
    buffers.ingest([report(1, version=1), report(2, version=2)])
    buffers.ingest([report(3, version=1)])  # version 1 is now the most recent
    result = buffers.ingest([report(4, version=3)])
    assert result.evicted == 1  # version 2's one report
    assert buffers.versions() == [("packer", 1), ("packer", 3)]


def test_non_finite_reports_are_rejected_and_counted() -> None:
    buffers = KpiBuffers()
    bad_latency = report(1)
    bad_latency.latency_ms = math.inf
    result = buffers.ingest([bad_latency, report(2, quality=math.nan), report(3, quality=0.5)])
    assert (result.accepted, result.rejected_non_finite, result.buffered) == (1, 2, 1)
    kept = buffers.reports()[0]
    assert metric_value(kept, "quality") == 0.5 and metric_value(kept, "fuel_consumed") == 30.0
    assert metric_value(kept, "accuracy") is None


def test_filters_and_time_order() -> None:
    buffers = KpiBuffers()
    buffers.ingest([report(5, module="b"), report(1, module="a"), report(3, module="a", version=2)])
    assert [r.task_id for r in buffers.reports()] == ["t1", "t3", "t5"]
    assert [r.task_id for r in buffers.reports("a")] == ["t1", "t3"]
    assert buffers.reports("c") == []


def test_a_report_repeated_by_task_id_is_kept_once() -> None:
    buffers = KpiBuffers(capacity_per_version=3, max_versions=10)
    first = buffers.ingest([report(1), report(2)])
    again = buffers.ingest([report(2), report(1), report(3)])  # a batch re-run after a restart
    assert (first.accepted, first.duplicates) == (2, 0)
    assert (again.accepted, again.duplicates, again.buffered) == (1, 2, 3)
    assert [r.task_id for r in buffers.reports("packer", 1)] == ["t1", "t2", "t3"]
    # Once evicted from its window, an id is new again; another version has its own ids.
    buffers.ingest([report(4)])
    assert buffers.ingest([report(1), report(1, version=2)]).accepted == 2
