"""GeneticsService: RunGeneration, GetGenome, ListGenomeHistory, DeployBest, the
run grants (BeginRun, EndRun) and the bandit states (PutBanditState, GetBanditState)."""

from __future__ import annotations

import logging
import time

import grpc

from chimera.framework import MetricsRegistry
from chimera.framework.errors import Aborted, FailedPrecondition, NotFound, UpstreamError
from chimera.genetics.convert import bandit_proto, bandit_state, genome_proto
from chimera.genetics.generations import Breeder
from chimera.genetics.grants import RunGrants
from chimera.optim.bandit import BanditState
from chimera.genetics.store import Deployment, GenomeStore, StoreConflict
from chimera.v1 import execution_pb2, execution_pb2_grpc, genetics_pb2, genetics_pb2_grpc

__all__ = ["DEFAULT_HISTORY_LIMIT", "SERVICE_NAME", "GeneticsServicer"]

SERVICE_NAME = "chimera.v1.GeneticsService"
DEFAULT_HISTORY_LIMIT = 100

_log = logging.getLogger("chimera.genetics")


class GeneticsServicer(genetics_pb2_grpc.GeneticsServiceServicer):
    """The gRPC face of the breeder and the genome store."""

    def __init__(
        self,
        breeder: Breeder,
        store: GenomeStore,
        execution: execution_pb2_grpc.ExecutionServiceStub | None,
        metrics: MetricsRegistry | None = None,
        deploy_timeout_s: float = 10.0,
        grants: RunGrants | None = None,
    ) -> None:
        self._breeder = breeder
        self._grants = grants
        self._store = store
        self._execution = execution
        self._deploy_timeout_s = deploy_timeout_s
        registry = metrics or MetricsRegistry()
        self._generations = registry.counter(
            "genetics_generations_total", "Generations stored.", ("kind",)
        )
        self._genomes = registry.counter(
            "genetics_genomes_stored_total", "Genomes stored, one per member of each generation."
        )
        self._evaluations = registry.counter(
            "genetics_evaluations_total", "Fitness values received (evaluations made for this layer)."
        )
        self._deploys = registry.counter("genetics_deployments_total", "DeployBest calls that deployed.")
        self._clipped = registry.counter(
            "genetics_clipped_generations_total", "Generations a grant clipped to its max_population."
        )

    def RunGeneration(
        self, request: genetics_pb2.RunGenerationRequest, context: grpc.ServicerContext
    ) -> genetics_pb2.RunGenerationResponse:
        held = self._grants.bound(request.agent_id) if self._grants is not None else None
        response = self._breeder.run_generation(request, held.max_population if held else 0)
        if held is not None:
            response.grant.CopyFrom(self._grants.status(held))  # type: ignore[union-attr]
        if response.population_clipped_from:
            self._clipped.inc()
            _log.info(
                "agent %s generation %d: clipped from %d to the grant's %d members",
                request.agent_id, response.generation, response.population_clipped_from,
                len(response.population),
            )
        self._generations.labels(kind="initial" if response.generation == 0 else "bred").inc()
        self._genomes.inc(len(response.population))
        self._evaluations.inc(len(request.evaluations))
        if response.HasField("evaluated_generation"):
            s = response.evaluated_generation
            _log.info(
                "agent %s generation %d: best %.6g mean %.6g diversity %.4g, %d evaluations so far",
                request.agent_id, s.generation, s.best_fitness, s.mean_fitness,
                s.diversity.mean_pairwise_distance, s.evaluations,
            )
        return response

    def GetGenome(
        self, request: genetics_pb2.GetGenomeRequest, context: grpc.ServicerContext
    ) -> genetics_pb2.AgentGenome:
        record = self._store.get(request.genome_id)
        if record is None:
            raise NotFound(f"genome {request.genome_id!r} is unknown")
        return genome_proto(record)

    def ListGenomeHistory(
        self, request: genetics_pb2.ListGenomeHistoryRequest, context: grpc.ServicerContext
    ) -> genetics_pb2.ListGenomeHistoryResponse:
        records = self._store.history(
            request.agent_id,
            limit=request.limit or DEFAULT_HISTORY_LIMIT,
            before_version=request.before_version,
            evaluated_only=request.evaluated_only,
        )
        return genetics_pb2.ListGenomeHistoryResponse(genomes=[genome_proto(r) for r in records])

    def DeployBest(
        self, request: genetics_pb2.DeployBestRequest, context: grpc.ServicerContext
    ) -> genetics_pb2.DeployBestResponse:
        if self._execution is None:
            raise FailedPrecondition("this service has no --execution-target to deploy to")
        best = self._store.best(request.agent_id)
        if best is None:
            raise FailedPrecondition(f"agent {request.agent_id!r} has no evaluated genome")
        if request.HasField("min_fitness") and best.fitness < request.min_fitness:  # type: ignore[operator]
            raise FailedPrecondition(
                f"the best genome {best.id} has fitness {best.fitness}, below min_fitness {request.min_fitness}"
            )
        genome = genome_proto(best)
        try:
            deployment = self._execution.DeployGenome(
                execution_pb2.DeployGenomeRequest(module_name=request.module_name, genome=genome),
                timeout=self._deploy_timeout_s,
            )
        except grpc.RpcError as exc:
            raise UpstreamError.from_rpc(exc, "execution refused DeployGenome") from exc
        try:
            self._store.record_deployment(
                Deployment(
                    module_name=deployment.module_name,
                    version=deployment.version,
                    agent_id=request.agent_id,
                    genome_id=best.id,
                    replaced_version=deployment.previous_version,
                    deployed_at=deployment.deployed_at.ToNanoseconds() / 1e9 or time.time(),
                )
            )
        except StoreConflict as exc:
            raise Aborted(f"deployment {deployment.version} already recorded: {exc}") from exc
        self._deploys.inc()
        return genetics_pb2.DeployBestResponse(genome=genome, deployment=deployment)

    def BeginRun(
        self, request: genetics_pb2.BeginRunRequest, context: grpc.ServicerContext
    ) -> genetics_pb2.RunGrantStatus:
        status = self._require_grants().begin(request)
        _log.info(
            "agent %s: job %s granted: population <= %d, %d s",
            request.agent_id, status.job.id, status.max_population, status.wall_time_seconds,
        )
        return status

    def EndRun(
        self, request: genetics_pb2.EndRunRequest, context: grpc.ServicerContext
    ) -> genetics_pb2.RunGrantStatus:
        return self._require_grants().end(request.agent_id)

    def _require_grants(self) -> RunGrants:
        if self._grants is None:
            raise FailedPrecondition("this service has no --resources-target to ask for grants")
        return self._grants

    def PutBanditState(
        self, request: genetics_pb2.PutBanditStateRequest, context: grpc.ServicerContext
    ) -> genetics_pb2.BanditStateRecord:
        state = bandit_state(request.state)
        self._store.save_bandit(request.state.problem_class, state.to_json())
        return bandit_proto(request.state.problem_class, state)

    def GetBanditState(
        self, request: genetics_pb2.GetBanditStateRequest, context: grpc.ServicerContext
    ) -> genetics_pb2.BanditStateRecord:
        text = self._store.load_bandit(request.problem_class)
        if text is None:
            raise NotFound(f"no bandit state is stored for problem class {request.problem_class!r}")
        return bandit_proto(request.problem_class, BanditState.from_json(text))
