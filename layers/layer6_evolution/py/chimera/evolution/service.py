"""EvolutionService: the gRPC face of the runs, the bandit and the operator tuning."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import grpc

from chimera.evolution import operators
from chimera.evolution.problems import check_bounds
from chimera.evolution.runs import Runs
from chimera.framework import MetricsRegistry
from chimera.framework.errors import InvalidArgument
from chimera.v1 import common_pb2, evolution_pb2, evolution_pb2_grpc

__all__ = ["SERVICE_NAME", "EvolutionServicer"]

SERVICE_NAME = "chimera.v1.EvolutionService"

_log = logging.getLogger("chimera.evolution")


class EvolutionServicer(evolution_pb2_grpc.EvolutionServiceServicer):
    def __init__(self, runs: Runs, metrics: MetricsRegistry | None = None) -> None:
        self._runs = runs
        registry = metrics or MetricsRegistry()
        self._finished = registry.counter("evolution_runs_total", "Server-side runs finished.", ("algorithm",))
        self._evaluations = registry.counter(
            "evolution_evaluations_total",
            "Objective evaluations: made here for Evolve/StreamRun runs (source=server), "
            "made by the client and told through Step (source=client), or by the bin-packing "
            "twin for ScreenStep (source=twin).",
            ("source",),
        )

    def SelectAlgorithm(self, request, context) -> evolution_pb2.AlgorithmChoice:
        return self._runs.select(request)

    def StartRun(self, request, context) -> evolution_pb2.Population:
        return self._runs.start(request)

    def Step(self, request, context) -> evolution_pb2.Population:
        population = self._runs.step(request)
        self._evaluations.labels(source="client").inc(len(request.fitness))
        return population

    def ScreenStep(self, request, context) -> evolution_pb2.Population:
        population, screened = self._runs.screen_step(request)
        self._evaluations.labels(source="twin").inc(screened)
        return population

    def Evolve(self, request, context) -> evolution_pb2.EvolveResponse:
        result = None
        for kind, message in self._events(request, context):
            if kind == "result":
                result = message
        assert result is not None
        return result

    def StreamRun(self, request, context) -> Iterator[evolution_pb2.RunProgress]:
        for kind, message in self._events(request, context):
            yield evolution_pb2.RunProgress(**{kind: message})

    def _events(self, request: evolution_pb2.EvolveRequest, context: grpc.ServicerContext):
        counted = 0  # evaluations of this run already on the counter
        for kind, message in self._runs.evolve(request, context.is_active):
            if kind in ("generation", "result"):
                # Counted as the run goes, so a long run shows its evaluations per second.
                self._evaluations.labels(source="server").inc(message.evaluations - counted)
                counted = message.evaluations
            if kind == "generation" and (message.generation % 50 == 0):
                _log.info(
                    "run generation %d: best %.6g mean %.6g, %d evaluations",
                    message.generation, message.best_fitness, message.mean_fitness, message.evaluations,
                )
            if kind == "result":
                name = evolution_pb2.EvolutionAlgorithm.Name(message.choice.algorithm)
                self._finished.labels(algorithm=name).inc()
                _log.info(
                    "run %s (%s) finished: best %.6g after %d evaluations; %s",
                    message.run_id, name, message.best.fitness, message.evaluations, message.stop_reason,
                )
            yield kind, message

    def ReportOutcome(self, request, context) -> evolution_pb2.ReportOutcomeResponse:
        return self._runs.report(request)

    def SuggestOperators(self, request, context) -> common_pb2.OperatorSettings:
        if request.run_id:
            return operators.from_run(self._runs.get(request.run_id), request.current)
        if not request.bounds:
            raise InvalidArgument("bounds", "is required without run_id")
        if not request.recent:
            raise InvalidArgument("recent", "is required without run_id")
        maximize = {
            common_pb2.OPTIMIZATION_DIRECTION_MINIMIZE: False,
            common_pb2.OPTIMIZATION_DIRECTION_MAXIMIZE: True,
        }.get(request.direction)
        if maximize is None:
            raise InvalidArgument("direction", "is required (MINIMIZE or MAXIMIZE) with recent")
        bounds = check_bounds(request.bounds, "bounds")
        return operators.from_generations(bounds, request.recent, maximize, request.current)
