"""Stored genomes, deployments and bandit states as chimera.v1 messages."""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from chimera.framework.errors import InvalidArgument
from chimera.genetics.store import GenomeRecord
from chimera.optim.bandit import BanditState
from chimera.v1 import common_pb2, genetics_pb2

__all__ = ["bandit_proto", "bandit_state", "genome_proto", "timestamp"]


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


def bandit_state(record: genetics_pb2.BanditStateRecord) -> BanditState:
    """The engine's bandit state of a message, with the checks across fields
    the contract cannot state (unique names, reward_sum <= pulls)."""
    seen: dict[str, int] = {}
    for i, arm in enumerate(record.arms):
        if arm.name in seen:
            raise InvalidArgument(f"state.arms[{i}].name", f"repeats state.arms[{seen[arm.name]}].name")
        seen[arm.name] = i
        if arm.reward_sum > arm.pulls:
            raise InvalidArgument(
                f"state.arms[{i}].reward_sum",
                f"{arm.reward_sum} exceeds its {arm.pulls} pulls (each reward is in [0, 1])",
            )
    return BanditState(
        arms=tuple(a.name for a in record.arms),
        pulls=tuple(a.pulls for a in record.arms),
        reward_sums=tuple(a.reward_sum for a in record.arms),
        exploration=record.exploration,
    )


def bandit_proto(problem_class: str, state: BanditState) -> genetics_pb2.BanditStateRecord:
    return genetics_pb2.BanditStateRecord(
        problem_class=problem_class,
        arms=[
            genetics_pb2.BanditArmTally(name=name, pulls=pulls, reward_sum=total)
            for name, pulls, total in zip(state.arms, state.pulls, state.reward_sums)
        ],
        exploration=state.exploration,
    )
