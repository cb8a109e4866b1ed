"""What the service tests share: the loopback config, the search space and ask/tell helpers."""

from __future__ import annotations

from chimera.framework import ServerConfig
from chimera.v1 import common_pb2, genetics_pb2, genetics_pb2_grpc

__all__ = ["BOUNDS", "LOOPBACK", "SIZE", "Stub", "advance", "sphere_fitness", "start"]

LOOPBACK = ServerConfig(port=0, metrics_port=None)
Stub = genetics_pb2_grpc.GeneticsServiceStub
# The kernel's eight genes (chimera.execution.workload) in a box around its good genome.
BOUNDS = [common_pb2.ParameterBounds(name=f"w{i}", lower=-5.0, upper=5.0) for i in range(8)]
# One population size and the default operators throughout: the GA step is
# compiled per shape and settings, and each compile costs seconds here.
SIZE = 8


def start(stub: Stub, agent: str, **kw: object) -> genetics_pb2.RunGenerationResponse:
    kw.setdefault("bounds", BOUNDS)
    return stub.RunGeneration(genetics_pb2.RunGenerationRequest(agent_id=agent, **kw), timeout=60)


def sphere_fitness(genome: common_pb2.AgentGenome) -> float:
    return -sum(x * x for x in genome.parameters)


def advance(
    stub: Stub, agent: str, population: list[common_pb2.AgentGenome], **kw: object
) -> genetics_pb2.RunGenerationResponse:
    evaluations = [
        genetics_pb2.GenomeEvaluation(genome_id=g.id, fitness=sphere_fitness(g)) for g in population
    ]
    return stub.RunGeneration(
        genetics_pb2.RunGenerationRequest(agent_id=agent, evaluations=evaluations, **kw), timeout=60
    )
