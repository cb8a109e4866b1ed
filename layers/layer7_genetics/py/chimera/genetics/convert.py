"""Stored genomes and deployments as chimera.v1 messages."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from chimera.genetics.store import GenomeRecord
from chimera.v1 import common_pb2

__all__ = ["genome_proto", "timestamp"]


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(round(seconds * 1e9)))
    return ts


def genome_proto(record: GenomeRecord) -> common_pb2.AgentGenome:
    return common_pb2.AgentGenome(
        id=record.id,
        agent_id=record.agent_id,
        version=record.version,
        parameters=record.parameters,
        parameter_names=record.parameter_names,
        hyperparameters=record.hyperparameters,
        metadata=common_pb2.GenomeMetadata(
            fitness=record.fitness if record.fitness is not None else 0.0,
            generation=record.generation,
            mutation_rate=record.mutation_rate,
            crossover_method=record.crossover_method,  # type: ignore[arg-type]
            parent_ids=record.parent_ids,
            evaluated=record.evaluated,
        ),
        created_at=timestamp(record.created_at),
    )
