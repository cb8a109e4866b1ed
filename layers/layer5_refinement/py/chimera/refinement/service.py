"""RefinementService: the gRPC face of the buffers, analyses, experiments and optimizer."""

from __future__ import annotations

import grpc

from chimera.framework import MetricsRegistry
from chimera.refinement import optimizer, patterns
from chimera.refinement.buffers import KpiBuffers
from chimera.refinement.core import Decision, RefinementCore
from chimera.refinement.experiment_journal import ExperimentJournal
from chimera.refinement.experiments import ExperimentStore
from chimera.v1 import refinement_pb2, refinement_pb2_grpc

__all__ = ["SERVICE_NAME", "RefinementMetrics", "RefinementServicer"]

SERVICE_NAME = "chimera.v1.RefinementService"


class RefinementMetrics:
    """The layer's Prometheus metrics (``layer5_*``)."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.ingested = registry.counter(
            "layer5_kpis_ingested_total", "KPI reports buffered, by source.", ("source",)
        )
        self.rejected = registry.counter(
            "layer5_kpis_rejected_total", "KPI reports rejected, by reason.", ("reason",)
        )
        self.evicted = registry.counter(
            "layer5_kpis_evicted_total", "Buffered reports dropped to respect capacity."
        )
        self.buffered = registry.gauge("layer5_kpis_buffered", "KPI reports buffered now.")
        self.experiments = registry.counter(
            "layer5_experiments_created_total", "A/B experiments created."
        )
        self.observations = registry.counter(
            "layer5_experiment_observations_total", "Observations recorded into experiments."
        )
        self.decisions = registry.counter(
            "layer5_experiment_decisions_total",
            "AnalyzeExperiment answers, by decision.",
            ("decision",),
        )
        self.evolution = registry.counter(
            "layer5_evolution_decisions_total", "ShouldEvolve answers, by trigger.", ("trigger",)
        )
        self.anomalies = registry.counter(
            "layer5_anomalies_total", "Anomalies reported by DetectPatterns, by method.", ("method",)
        )

    def decision(self, decision: Decision) -> None:
        self.decisions.labels(decision=decision.name.lower()).inc()


class RefinementServicer(refinement_pb2_grpc.RefinementServiceServicer):
    def __init__(
        self,
        core: RefinementCore,
        buffers: KpiBuffers,
        metrics: RefinementMetrics,
        experiment_capacity: int = 10_000,
        journal: ExperimentJournal | None = None,
    ) -> None:
        self._core = core
        self._buffers = buffers
        self._metrics = metrics
        self._experiments = ExperimentStore(core, experiment_capacity, metrics.decision, journal)

    @property
    def buffers(self) -> KpiBuffers:
        """The KPI reports held (ingested and streamed), for tests and diagnostics."""
        return self._buffers

    def IngestKpis(
        self, request: refinement_pb2.KpiBatch, context: grpc.ServicerContext
    ) -> refinement_pb2.IngestKpisResponse:
        # The contract's rules have already refused non-finite values.
        result = self._buffers.ingest(request.reports)
        self._metrics.ingested.labels(source="rpc").inc(result.accepted)
        self._metrics.rejected.labels(reason="duplicate_task_id").inc(result.duplicates)
        self._metrics.evicted.inc(result.evicted)
        self._metrics.buffered.set(result.buffered)
        return refinement_pb2.IngestKpisResponse(
            accepted=result.accepted, evicted=result.evicted, buffered=result.buffered
        )

    def DetectPatterns(
        self, request: refinement_pb2.DetectPatternsRequest, context: grpc.ServicerContext
    ) -> refinement_pb2.PatternResult:
        result = patterns.detect_patterns(self._core, self._buffers, request)
        for anomaly in result.anomalies:
            method = refinement_pb2.AnomalyMethod.Name(anomaly.method)
            self._metrics.anomalies.labels(method=method.removeprefix("ANOMALY_METHOD_").lower()).inc()
        return result

    def CreateExperiment(
        self, request: refinement_pb2.CreateExperimentRequest, context: grpc.ServicerContext
    ) -> refinement_pb2.Experiment:
        experiment = self._experiments.create(request)
        self._metrics.experiments.inc()
        return experiment

    def RecordObservation(
        self, request: refinement_pb2.RecordObservationRequest, context: grpc.ServicerContext
    ) -> refinement_pb2.Experiment:
        experiment = self._experiments.record(request)
        self._metrics.observations.inc()
        return experiment

    def AnalyzeExperiment(
        self, request: refinement_pb2.AnalyzeExperimentRequest, context: grpc.ServicerContext
    ) -> refinement_pb2.ExperimentAnalysis:
        return self._experiments.analyze(request.experiment_id)

    def Optimize(
        self, request: refinement_pb2.OptimizeRequest, context: grpc.ServicerContext
    ) -> refinement_pb2.OptimizationResult:
        return optimizer.optimize(request)

    def ShouldEvolve(
        self, request: refinement_pb2.ShouldEvolveRequest, context: grpc.ServicerContext
    ) -> refinement_pb2.EvolutionDecision:
        decision = patterns.should_evolve(self._core, self._buffers, request)
        trigger = refinement_pb2.EvolutionTrigger.Name(decision.trigger)
        self._metrics.evolution.labels(trigger=trigger.removeprefix("EVOLUTION_TRIGGER_").lower()).inc()
        return decision
