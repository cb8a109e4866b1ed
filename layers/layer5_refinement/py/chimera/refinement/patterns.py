"""DetectPatterns and ShouldEvolve over the buffered KPI windows.

Anomaly rules, the trend and the evolution trigger run in the Rust core;
clustering runs in JAX (:mod:`chimera.refinement.clustering`).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import numpy as np

from chimera.framework import InvalidArgument
from chimera.refinement.buffers import KpiBuffers, metric_value, report_time
from chimera.refinement.clustering import kmeans
from chimera.refinement.core import Direction, RefinementCore, TriggerRule
from chimera.v1 import common_pb2, refinement_pb2

__all__ = ["CLUSTER_FEATURES", "DEFAULTS", "Defaults", "detect_patterns", "should_evolve"]

#: Features of the clustering space after the analysed metric.
CLUSTER_FEATURES = ("latency_ms", "fuel_consumed")


@dataclass(frozen=True)
class Defaults:
    """What a 0 in a request stands for."""

    z_threshold: float = 3.0
    ewma_alpha: float = 0.3
    window: int = 50
    max_degradation: float = 0.1
    max_anomaly_rate: float = 0.05
    max_failure_rate: float = 0.1
    min_improvement: float = 0.01


DEFAULTS = Defaults()


def detect_patterns(
    core: RefinementCore, buffers: KpiBuffers, request: refinement_pb2.DetectPatternsRequest
) -> refinement_pb2.PatternResult:
    if request.module_version and not request.module_name:
        raise InvalidArgument("module_name", "is required when module_version is set")
    reports = [
        r
        for r in buffers.reports(request.module_name, request.module_version)
        if r.status == common_pb2.RUN_OUTCOME_SUCCESS and metric_value(r, request.metric) is not None
    ]
    if request.window:
        reports = reports[-request.window :]
    result = refinement_pb2.PatternResult(metric=request.metric, samples_analyzed=len(reports))
    if not reports:
        return result
    values = [metric_value(r, request.metric) or 0.0 for r in reports]
    times = [report_time(r) for r in reports]
    start = times[0]
    stats = core.patterns(
        [t - start for t in times],
        values,
        z_threshold=request.z_threshold or DEFAULTS.z_threshold,
        ewma_alpha=request.ewma_alpha or DEFAULTS.ewma_alpha,
    )
    result.mean, result.stddev = stats.mean, stats.stddev
    for hit in stats.anomalies:
        report = reports[hit.index]
        result.anomalies.add(
            task_id=report.task_id,
            metric=request.metric,
            value=values[hit.index],
            expected=hit.expected,
            score=hit.score,
            method=hit.method,
            recorded_at=report.recorded_at,
        )
    if stats.trend is not None:
        result.trend.CopyFrom(
            refinement_pb2.Trend(
                metric=request.metric,
                slope_per_second=stats.trend.slope,
                r_squared=stats.trend.r_squared,
                direction=stats.trend.direction,
                sample_count=len(values),
            )
        )
    if request.cluster_count:
        features = np.array(
            [[v, r.latency_ms, float(r.fuel_consumed)] for v, r in zip(values, reports)]
        )
        clusters = kmeans(jax.random.key(request.seed), features, request.cluster_count)
        result.cluster_features.extend((request.metric, *CLUSTER_FEATURES))
        for centroid, size, distance in zip(
            clusters.centroids, clusters.sizes, clusters.mean_distance
        ):
            result.clusters.add(
                centroid=[float(c) for c in centroid], size=int(size), mean_distance=float(distance)
            )
    return result


def should_evolve(
    core: RefinementCore, buffers: KpiBuffers, request: refinement_pb2.ShouldEvolveRequest
) -> refinement_pb2.EvolutionDecision:
    points: list[tuple[float, bool]] = []
    for report in buffers.reports(request.module_name):
        ok = report.status == common_pb2.RUN_OUTCOME_SUCCESS
        value = metric_value(report, request.metric)
        if ok and value is None:
            continue  # a successful run that does not measure this metric says nothing
        points.append((value if value is not None else 0.0, ok))
    rule = TriggerRule(
        direction=Direction(request.direction),
        window=request.window or DEFAULTS.window,
        max_degradation=request.max_degradation or DEFAULTS.max_degradation,
        max_anomaly_rate=request.max_anomaly_rate or DEFAULTS.max_anomaly_rate,
        max_failure_rate=request.max_failure_rate or DEFAULTS.max_failure_rate,
        z_threshold=DEFAULTS.z_threshold,
        plateau=request.trigger_on_plateau,
        min_improvement=request.min_improvement or DEFAULTS.min_improvement,
    )
    verdict = core.should_evolve(points, rule)
    return refinement_pb2.EvolutionDecision(
        should_evolve=verdict.should_evolve,
        trigger=verdict.trigger,
        reason=verdict.reason,
        current_mean=verdict.current_mean,
        baseline_mean=verdict.baseline_mean,
        degradation=verdict.degradation,
        anomaly_rate=verdict.anomaly_rate,
        failure_rate=verdict.failure_rate,
        sample_count=verdict.sample_count,
        p_value=verdict.p_value,
    )
