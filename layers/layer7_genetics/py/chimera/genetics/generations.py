"""RunGeneration's pipeline: check the request, record fitness, breed, store.

The first call for an agent draws a random population within its bounds;
each later call records the fitness of members of the agent's newest
generation and breeds the next one from it (:mod:`chimera.genetics.breeding`).
Genome checks, diversity and the default fitness formula come from the Rust
core; the fitness and the new generation are stored in one transaction.

A call is safe to send again: when its answer was lost (the service died
after the commit), the same request scores a generation that already has a
successor, and the answer is that stored successor, not another generation.
The same fitness values are required (anything else is FAILED_PRECONDITION);
a repeated first call (same bounds, agent still at generation 0) returns
generation 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from chimera.framework.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
)
from chimera.genetics.breeding import CROSSOVERS, Operators, breed, initial_population
from chimera.genetics.convert import genome_proto
from chimera.genetics.core import STATUS_BAD_BOUNDS, CoreError, GeneticsCore, KpiInputs
from chimera.genetics.store import AgentState, GenomeRecord, GenomeStore, NewGenome, StoreConflict
from chimera.v1 import common_pb2, genetics_pb2

__all__ = ["Breeder", "BreederLimits"]


@dataclass(frozen=True)
class BreederLimits:
    """Defaults and the largest generation the service will breed."""

    default_population: int = 32
    #: population_size x genome length; beyond it a request is refused.
    max_genes_per_generation: int = 10_000_000


@dataclass(frozen=True)
class _Space:
    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray

    @property
    def bounds(self) -> list[tuple[float, float]]:
        return list(zip(self.lower.tolist(), self.upper.tolist()))

    def to_json(self) -> list[list[Any]]:
        return [[n, lo, hi] for n, (lo, hi) in zip(self.names, self.bounds)]

    @classmethod
    def from_json(cls, rows: list[list[Any]]) -> _Space:
        return cls(
            tuple(r[0] for r in rows),
            np.array([r[1] for r in rows], dtype=np.float64),
            np.array([r[2] for r in rows], dtype=np.float64),
        )


class Breeder:
    """Advances agents' populations; thread-safe (state lives in the store)."""

    def __init__(
        self, core: GeneticsCore, store: GenomeStore, limits: BreederLimits = BreederLimits()
    ) -> None:
        self._core = core
        self._store = store
        self._limits = limits

    def run_generation(
        self, request: genetics_pb2.RunGenerationRequest, max_population: int = 0
    ) -> genetics_pb2.RunGenerationResponse:
        """One generation; ``max_population`` (a grant's, 0 = none) clips the new one."""
        if request.allocation_id:
            raise FailedPrecondition(
                "allocation_id: grants are not taken this way; BeginRun asks resources for one"
            )
        agent = self._store.agent(request.agent_id)
        if agent is None:
            return self._first_generation(request, max_population)
        repeated = self._repeated(request, agent)
        if repeated is not None:
            return repeated
        space = _Space.from_json(agent.settings["bounds"])
        stored_size = int(agent.settings["population_size"])
        size = _clipped(stored_size, max_population)
        ops = _operators(
            Operators.from_json(agent.settings["operators"]), request, len(space.names), size
        )
        current = self._store.population(request.agent_id, agent.generation)
        fitness = self._fitness(request, current)
        merged = np.array(
            [fitness.get(g.id, np.nan if g.fitness is None else g.fitness) for g in current]
        )
        if np.isnan(merged).all():
            raise InvalidArgument(
                "evaluations",
                f"must give the fitness of at least one member of generation {agent.generation}",
            )
        genes = np.array([g.parameters for g in current], dtype=np.float64)
        offspring = breed(_key(request.seed, agent.generation + 1), genes, merged, space.lower, space.upper, ops, size)
        ids = [g.id for g in current]
        new = [
            NewGenome(
                parameters=tuple(offspring.genes[i].tolist()),
                parent_ids=tuple(ids[p] for p in offspring.parents[i] if p >= 0),
                mutation_rate=ops.mutation_rate,
                crossover_method=int(offspring.crossover[i]),
            )
            for i in range(size)
        ]
        self._core.check_population(space.bounds, [g.parameters for g in new])
        records = self._commit(
            request.agent_id, agent.generation + 1, new, space, ops, stored_size, fitness
        )
        summary = self._summary(request.agent_id, agent.generation, space, genes, merged)
        response = self._response(request.agent_id, agent.generation + 1, records, ops, summary)
        response.population_clipped_from = stored_size if size < stored_size else 0
        return response

    def _repeated(
        self, request: genetics_pb2.RunGenerationRequest, agent: AgentState
    ) -> genetics_pb2.RunGenerationResponse | None:
        """The stored answer when ``request`` repeats one already committed, else None."""
        space = _Space.from_json(agent.settings["bounds"])
        ops = Operators.from_json(agent.settings["operators"])
        stored_size = int(agent.settings["population_size"])
        if not request.evaluations:
            if agent.generation != 0 or not request.bounds or _Space(
                tuple(b.name for b in request.bounds),
                np.array([b.lower for b in request.bounds], dtype=np.float64),
                np.array([b.upper for b in request.bounds], dtype=np.float64),
            ).to_json() != space.to_json():
                return None
            records = self._store.population(request.agent_id, 0)
            response = self._response(request.agent_id, 0, records, ops, None)
            response.population_clipped_from = stored_size if len(records) < stored_size else 0
            return response
        first = self._store.get(request.evaluations[0].genome_id)
        scored = agent.generation - 1
        if first is None or first.agent_id != request.agent_id or first.generation != scored:
            return None
        previous = self._store.population(request.agent_id, scored)
        fitness = self._fitness(request, previous)
        stored = {g.id: g.fitness for g in previous}
        differ = sorted(gid for gid, value in fitness.items() if stored[gid] != value)
        if differ:
            raise FailedPrecondition(
                f"evaluations: generation {scored} of agent {request.agent_id!r} was already scored "
                f"and bred into generation {agent.generation}, with other fitness for {differ[0]}"
            )
        genes = np.array([g.parameters for g in previous], dtype=np.float64)
        merged = np.array([np.nan if g.fitness is None else g.fitness for g in previous])
        summary = self._summary(request.agent_id, scored, space, genes, merged)
        records = self._store.population(request.agent_id, agent.generation)
        response = self._response(request.agent_id, agent.generation, records, ops, summary)
        response.population_clipped_from = stored_size if len(records) < stored_size else 0
        return response

    def _summary(
        self, agent_id: str, generation: int, space: _Space, genes: np.ndarray, merged: np.ndarray
    ) -> common_pb2.GenerationSummary:
        """The scored generation's summary (its evaluated members' fitness, its diversity)."""
        evaluated = merged[~np.isnan(merged)]
        diversity = self._core.check_population(space.bounds, genes.tolist())
        return common_pb2.GenerationSummary(
            generation=generation,
            best_fitness=float(evaluated.max()),
            mean_fitness=float(evaluated.mean()),
            diversity=common_pb2.DiversityStats(
                mean_pairwise_distance=diversity.mean_pairwise_distance,
                mean_dimension_stddev=diversity.mean_dimension_stddev,
            ),
            evaluations=self._store.evaluated_count(agent_id),
        )

    def _first_generation(
        self, request: genetics_pb2.RunGenerationRequest, max_population: int
    ) -> genetics_pb2.RunGenerationResponse:
        if not request.bounds:
            raise InvalidArgument("bounds", "is required on the first call for an agent")
        if request.evaluations:
            raise InvalidArgument(
                "evaluations[0].genome_id", f"is not a genome of agent {request.agent_id!r} (it has none)"
            )
        seen: dict[str, int] = {}
        for i, b in enumerate(request.bounds):
            if b.name in seen:
                raise InvalidArgument(f"bounds[{i}].name", f"repeats bounds[{seen[b.name]}].name")
            seen[b.name] = i
        space = _Space(
            tuple(b.name for b in request.bounds),
            np.array([b.lower for b in request.bounds], dtype=np.float64),
            np.array([b.upper for b in request.bounds], dtype=np.float64),
        )
        size = request.population_size or self._limits.default_population
        if size < 2:
            raise InvalidArgument("population_size", "must be at least 2 (or 0 for the default)")
        if size * len(space.names) > self._limits.max_genes_per_generation:
            raise InvalidArgument(
                "population_size",
                f"{size} x {len(space.names)} genes exceeds the limit of "
                f"{self._limits.max_genes_per_generation} genes per generation",
            )
        wanted, size = size, _clipped(size, max_population)
        ops = _operators(Operators(), request, len(space.names), size)
        try:
            # The core checks the bounds before the (here empty) population.
            self._core.check_population(space.bounds, [])
        except CoreError as exc:
            if exc.status == STATUS_BAD_BOUNDS:
                raise InvalidArgument(
                    f"bounds[{exc.details[0]}]", "must have lower below upper"
                ) from exc
        genes = initial_population(_key(request.seed, 0), space.lower, space.upper, size, ops)
        new = [NewGenome(parameters=tuple(row)) for row in genes.tolist()]
        self._core.check_population(space.bounds, [g.parameters for g in new])
        # The agent keeps the size it asked for; each generation is clipped to its grant.
        records = self._commit(request.agent_id, 0, new, space, ops, wanted, {})
        response = self._response(request.agent_id, 0, records, ops, None)
        response.population_clipped_from = wanted if size < wanted else 0
        return response

    def _fitness(
        self, request: genetics_pb2.RunGenerationRequest, current: list[GenomeRecord]
    ) -> dict[str, float]:
        members = {g.id for g in current}
        generation = current[0].generation if current else 0
        values: dict[str, float] = {}
        kpis: list[tuple[int, str, KpiInputs]] = []
        for i, ev in enumerate(request.evaluations):
            if ev.genome_id not in members:
                raise InvalidArgument(
                    f"evaluations[{i}].genome_id",
                    f"is not a member of generation {generation} of agent {request.agent_id!r}",
                )
            if ev.genome_id in values or any(k[1] == ev.genome_id for k in kpis):
                raise InvalidArgument(f"evaluations[{i}].genome_id", "is evaluated twice")
            which = ev.WhichOneof("score")
            if which == "fitness":
                values[ev.genome_id] = ev.fitness
            elif which == "inputs":
                k = ev.inputs
                kpis.append(
                    (i, ev.genome_id,
                     KpiInputs(k.accuracy, k.latency_ms, k.throughput_per_second, k.error_rate))
                )
            else:
                raise InvalidArgument(f"evaluations[{i}].score", "is required (fitness or inputs)")
        if kpis:
            try:
                scores = self._core.fitness([k[2] for k in kpis])
            except CoreError as exc:
                index, field = int(exc.details[0]), exc.details[1]
                raise InvalidArgument(
                    f"evaluations[{kpis[index][0]}].inputs.{field}", exc.message
                ) from exc
            values.update({gid: s for (_, gid, _), s in zip(kpis, scores)})
        return values

    def _commit(
        self,
        agent_id: str,
        generation: int,
        new: list[NewGenome],
        space: _Space,
        ops: Operators,
        size: int,
        fitness: dict[str, float],
    ) -> list[GenomeRecord]:
        settings = {"bounds": space.to_json(), "operators": ops.to_json(), "population_size": size}
        try:
            return self._store.commit_generation(
                agent_id, generation, new, parameter_names=space.names,
                settings=settings, fitness=fitness,
            )
        except StoreConflict as exc:
            raise Aborted(f"agent {agent_id!r} advanced concurrently: {exc}") from exc

    def _response(
        self,
        agent_id: str,
        generation: int,
        records: list[GenomeRecord],
        ops: Operators,
        summary: common_pb2.GenerationSummary | None,
    ) -> genetics_pb2.RunGenerationResponse:
        response = genetics_pb2.RunGenerationResponse(
            agent_id=agent_id,
            generation=generation,
            population=[genome_proto(r) for r in records],
            operators=ops.to_proto(),
        )
        best = self._store.best(agent_id)
        if best is not None:
            response.best.CopyFrom(genome_proto(best))
        if summary is not None:
            response.evaluated_generation.CopyFrom(summary)
        return response


def _clipped(size: int, max_population: int) -> int:
    """``size`` within a grant's ``max_population`` (0 = no grant)."""
    if not max_population or size <= max_population:
        return size
    if max_population < 2:
        raise ResourceExhausted(
            f"grant: max_population {max_population} is below the 2 members a generation needs"
        )
    return max_population


def _key(seed: int, generation: int) -> jax.Array:
    """The PRNG key of one generation: all 64 bits of the seed, then the generation."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed & 0xFFFFFFFF), seed >> 32)
    return jax.random.fold_in(key, generation)


def _operators(
    base: Operators, request: genetics_pb2.RunGenerationRequest, genes: int, size: int
) -> Operators:
    """``base`` with the request's operators applied, checked against the genome."""
    if not request.HasField("operators"):
        return base
    settings = request.operators
    if settings.crossover_method and settings.crossover_method not in CROSSOVERS:
        raise InvalidArgument(
            "operators.crossover_method", f"{settings.crossover_method} is not a known CrossoverMethod"
        )
    if settings.search_mean and len(settings.search_mean) != genes:
        raise InvalidArgument("operators.search_mean", f"must have {genes} values, one per gene")
    if len(settings.search_stddev) != len(settings.search_mean):
        raise InvalidArgument("operators.search_stddev", "must have as many values as search_mean")
    ops = base.merged(settings)
    if ops.elite_count >= size:
        raise InvalidArgument(
            "operators.elite_count", f"must be below the population size {size}"
        )
    return ops
