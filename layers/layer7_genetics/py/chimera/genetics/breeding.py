"""One generation of the genetic algorithm, on the shared JAX engine's operators.

Selection, crossover, mutation and bound repair are ``chimera.optim.ga``'s
(tournament among the *evaluated* members, single-point / uniform / BLX-alpha
crossover, per-gene Gaussian mutation with sigma a fraction of each gene's
range, clip to the box); this module only adds what ask/tell over gRPC needs
on top: the elites (the ``elite_count`` best evaluated members, copied
unchanged) and each child's parents, for the store's lineage. A child whose
genes equal its first parent's before mutation was copied, so it has one
parent; otherwise two. All randomness comes from the PRNG key the caller
derives from the request's seed, so a seed fixes the result.

Genes are float32 inside the engine (its default; see ``chimera.optim.ga``)
and float64 in the store: the result is clipped to the bounds again in
float64, since rounding to float32 can step just past a bound.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpy.typing import NDArray

from chimera.optim import ga
from chimera.optim.space import Space
from chimera.v1 import common_pb2

__all__ = ["CROSSOVERS", "Offspring", "Operators", "breed", "initial_population"]

Array = NDArray[np.float64]

NONE = common_pb2.CROSSOVER_METHOD_NONE
SINGLE_POINT = common_pb2.CROSSOVER_METHOD_SINGLE_POINT
UNIFORM = common_pb2.CROSSOVER_METHOD_UNIFORM
BLEND = common_pb2.CROSSOVER_METHOD_BLEND
_ENGINE_NAMES = {SINGLE_POINT: "single_point", UNIFORM: "uniform", BLEND: "blend"}
#: The crossover methods a request may name.
CROSSOVERS = frozenset({NONE, *_ENGINE_NAMES})

@dataclass(frozen=True)
class Operators:
    """The GA's settings (chimera.v1.OperatorSettings with the defaults filled in)."""

    mutation_rate: float = 0.1
    mutation_sigma: float = 0.1
    crossover_method: int = UNIFORM
    crossover_rate: float = 0.9
    blend_alpha: float = 0.5
    tournament_size: int = 3
    elite_count: int = 1
    search_mean: tuple[float, ...] = ()
    search_stddev: tuple[float, ...] = ()

    def merged(self, settings: common_pb2.OperatorSettings) -> Operators:
        """These operators with the non-zero members of ``settings`` applied."""
        changes: dict[str, Any] = {}
        for name in ("mutation_rate", "mutation_sigma", "crossover_rate", "blend_alpha"):
            if getattr(settings, name):
                changes[name] = float(getattr(settings, name))
        for name in ("crossover_method", "tournament_size", "elite_count"):
            if getattr(settings, name):
                changes[name] = int(getattr(settings, name))
        if settings.search_mean:
            changes["search_mean"] = tuple(settings.search_mean)
            changes["search_stddev"] = tuple(settings.search_stddev)
        return replace(self, **changes)

    def to_proto(self) -> common_pb2.OperatorSettings:
        return common_pb2.OperatorSettings(
            mutation_rate=self.mutation_rate,
            mutation_sigma=self.mutation_sigma,
            crossover_method=self.crossover_method,  # type: ignore[arg-type]
            crossover_rate=self.crossover_rate,
            blend_alpha=self.blend_alpha,
            tournament_size=self.tournament_size,
            elite_count=self.elite_count,
            search_mean=self.search_mean,
            search_stddev=self.search_stddev,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "mutation_rate": self.mutation_rate,
            "mutation_sigma": self.mutation_sigma,
            "crossover_method": self.crossover_method,
            "crossover_rate": self.crossover_rate,
            "blend_alpha": self.blend_alpha,
            "tournament_size": self.tournament_size,
            "elite_count": self.elite_count,
            "search_mean": list(self.search_mean),
            "search_stddev": list(self.search_stddev),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Operators:
        return cls(
            **{
                **data,
                "search_mean": tuple(data.get("search_mean", ())),
                "search_stddev": tuple(data.get("search_stddev", ())),
            }
        )


@dataclass(frozen=True)
class Offspring:
    """A new population: genes, and for each child its parents (row indices
    into the old population; -1 for none) and how it was made."""

    genes: Array
    parents: NDArray[np.int64]
    crossover: NDArray[np.int64]


def _space(lower: Array, upper: Array) -> Space:
    return Space(dim=int(lower.shape[0]), lower=tuple(lower.tolist()), upper=tuple(upper.tolist()))


@functools.partial(jax.jit, static_argnames=("space", "size", "mean", "stddev"))
def _initial(
    key: jax.Array, space: Space, size: int, mean: tuple[float, ...], stddev: tuple[float, ...]
) -> jax.Array:
    if not mean:
        return space.uniform(key, size)
    noise = jax.random.normal(key, (size, space.dim), space.jdtype)
    return space.repair(jnp.asarray(mean, space.jdtype) + noise * jnp.asarray(stddev, space.jdtype))


def initial_population(key: jax.Array, lower: Array, upper: Array, size: int, ops: Operators) -> Array:
    """Uniform over the bounds, or the operators' search distribution clipped to them."""
    genes = _initial(key, _space(lower, upper), size, ops.search_mean, ops.search_stddev)
    return np.clip(np.asarray(genes, dtype=np.float64), lower, upper)


@functools.partial(jax.jit, static_argnames=("config", "n"))
def _vary(
    key: jax.Array, genes: jax.Array, cost: jax.Array, config: ga.GAConfig, n: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``n`` children of ``genes`` (lower ``cost`` is better): the tournament
    winners (first parents, then second), and whether each child was recombined."""
    select_key, cross_key, uniform_key, noise_key = jax.random.split(key, 4)
    space = config.space
    winners = ga.tournament(select_key, cost, 2 * n, config.tournament_size)
    first, second = genes[winners[:n]], genes[winners[n:]]
    u_cross, u_mutate = ga.gene_uniforms(uniform_key, first.shape, space.jdtype)
    children = ga.recombine(cross_key, first, second, u_cross, config)
    crossed = jnp.any(children != first, axis=1)
    low, high = space.bounds()
    sigma = jnp.asarray(config.mutation_sigma, space.jdtype) * (high - low)
    mutate = u_mutate < config.gene_mutation_rate
    noise = sigma * jax.random.normal(noise_key, children.shape, space.jdtype)
    return space.repair(children + jnp.where(mutate, noise, 0.0)), winners, crossed


def breed(
    key: jax.Array,
    population: Array,
    fitness: Array,
    lower: Array,
    upper: Array,
    ops: Operators,
    size: int,
) -> Offspring:
    """The next population of ``size`` (>= 2) from ``population`` (``fitness``
    NaN = unevaluated, higher is better); at least one member must be evaluated."""
    evaluated = np.flatnonzero(~np.isnan(fitness))
    if evaluated.size == 0:
        raise ValueError("no member of the population is evaluated")
    elite_n = min(ops.elite_count, size - 1, evaluated.size)
    elites = evaluated[np.argsort(-fitness[evaluated], kind="stable")[:elite_n]]
    n = size - elite_n
    space = _space(lower, upper)
    config = ga.GAConfig(
        space=space,
        pop_size=size,
        tournament_size=min(max(ops.tournament_size, 1), size),
        crossover=_ENGINE_NAMES.get(ops.crossover_method, "uniform"),  # type: ignore[arg-type]
        crossover_rate=ops.crossover_rate if ops.crossover_method != NONE else 0.0,
        blend_alpha=ops.blend_alpha,
        mutation_rate=ops.mutation_rate,
        mutation_sigma=ops.mutation_sigma if ops.mutation_sigma > 0 else Operators.mutation_sigma,
        elite=0,
    )
    # The engine minimises; the store's fitness is higher-is-better. Tournaments
    # need only the order: dense ranks taken here in float64 (ties stay ties)
    # keep it exactly, where float32 genes would tie close fitness values.
    cost = np.unique(-fitness[evaluated], return_inverse=True)[1].astype(np.int32)
    children, winners, crossed = _vary(
        key,
        jnp.asarray(population[evaluated], space.jdtype),
        jnp.asarray(cost),
        config,
        n,
    )
    crossed = np.asarray(crossed)
    winner_rows = evaluated[np.asarray(winners)]
    parents = np.full((size, 2), -1, dtype=np.int64)
    parents[:elite_n, 0] = elites
    parents[elite_n:, 0] = winner_rows[:n]
    parents[elite_n:, 1] = np.where(crossed, winner_rows[n:], -1)
    method = np.full(size, NONE, dtype=np.int64)
    method[elite_n:][crossed] = ops.crossover_method
    new = np.concatenate([population[elites], np.asarray(children, dtype=np.float64)])
    return Offspring(genes=np.clip(new, lower, upper), parents=parents, crossover=method)
