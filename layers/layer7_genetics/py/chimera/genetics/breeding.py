"""One generation of the genetic algorithm over real genes in box bounds (numpy).

Tournament selection among the evaluated members, then per child either a
crossover of two winners (single-point, uniform or BLX-alpha blend) or a
copy of one, then Gaussian mutation (per gene with probability
``mutation_rate``, sigma a fraction of the gene's range), clipped to the
bounds; the ``elite_count`` best members are copied unchanged. All
randomness comes from the ``numpy.random.Generator`` the caller passes, so a
seed fixes the result.

This is the layer's own step, used until the shared JAX engine
(``chimera.optim.ga``) is available to it; its operators are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from chimera.v1 import common_pb2

__all__ = ["CROSSOVERS", "Offspring", "Operators", "breed", "initial_population"]

Array = NDArray[np.float64]

NONE = common_pb2.CROSSOVER_METHOD_NONE
SINGLE_POINT = common_pb2.CROSSOVER_METHOD_SINGLE_POINT
UNIFORM = common_pb2.CROSSOVER_METHOD_UNIFORM
BLEND = common_pb2.CROSSOVER_METHOD_BLEND
#: The crossover methods the step implements.
CROSSOVERS = frozenset({NONE, SINGLE_POINT, UNIFORM, BLEND})


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
    mutated: NDArray[np.bool_]


def initial_population(
    rng: np.random.Generator, lower: Array, upper: Array, size: int, ops: Operators
) -> Array:
    """Uniform over the bounds, or the operators' search distribution clipped to them."""
    shape = (size, lower.shape[0])
    if ops.search_mean:
        mean = np.asarray(ops.search_mean)
        genes = mean + rng.standard_normal(shape) * np.asarray(ops.search_stddev)
        return np.clip(genes, lower, upper)
    return rng.uniform(lower, upper, shape)


def _tournament(
    rng: np.random.Generator, fitness: Array, candidates: NDArray[np.int64], k: int, n: int
) -> NDArray[np.int64]:
    """``n`` winners, each the fittest of ``k`` candidates drawn with replacement."""
    drawn = candidates[rng.integers(0, candidates.shape[0], (n, k))]
    return drawn[np.arange(n), np.argmax(fitness[drawn], axis=1)]  # type: ignore[no-any-return]


def _crossover(
    rng: np.random.Generator, a: Array, b: Array, method: int, alpha: float
) -> Array:
    n, d = a.shape
    if method == SINGLE_POINT:
        cut = rng.integers(1, d, n) if d > 1 else np.zeros(n, dtype=np.int64)
        return np.where(np.arange(d)[None, :] < cut[:, None], a, b)
    if method == UNIFORM:
        return np.where(rng.random((n, d)) < 0.5, a, b)
    if method == BLEND:
        low, high = np.minimum(a, b), np.maximum(a, b)
        span = high - low
        return rng.uniform(low - alpha * span, high + alpha * span)  # type: ignore[no-any-return]
    return a.copy()


def breed(
    rng: np.random.Generator,
    population: Array,
    fitness: Array,
    lower: Array,
    upper: Array,
    ops: Operators,
    size: int,
) -> Offspring:
    """The next population of ``size`` from ``population`` (``fitness`` NaN = unevaluated,
    higher is better); at least one member must be evaluated."""
    evaluated = np.flatnonzero(~np.isnan(fitness))
    if evaluated.size == 0:
        raise ValueError("no member of the population is evaluated")
    elite_n = min(ops.elite_count, size, evaluated.size)
    elites = evaluated[np.argsort(-fitness[evaluated], kind="stable")[:elite_n]]
    n = size - elite_n
    d = population.shape[1]
    first = _tournament(rng, fitness, evaluated, max(ops.tournament_size, 1), n)
    second = _tournament(rng, fitness, evaluated, max(ops.tournament_size, 1), n)
    crossed = (rng.random(n) < ops.crossover_rate) & (ops.crossover_method != NONE)
    children = population[first].copy()
    if crossed.any():
        children[crossed] = _crossover(
            rng, population[first[crossed]], population[second[crossed]],
            ops.crossover_method, ops.blend_alpha,
        )
    mask = rng.random((n, d)) < ops.mutation_rate
    noise = rng.standard_normal((n, d)) * (ops.mutation_sigma * (upper - lower))
    children = np.clip(np.where(mask, children + noise, children), lower, upper)
    parents = np.full((size, 2), -1, dtype=np.int64)
    parents[:elite_n, 0] = elites
    parents[elite_n:, 0] = first
    parents[elite_n:, 1] = np.where(crossed, second, -1)
    method = np.full(size, NONE, dtype=np.int64)
    method[elite_n:][crossed] = ops.crossover_method
    mutated = np.zeros(size, dtype=bool)
    mutated[elite_n:] = mask.any(axis=1)
    return Offspring(
        genes=np.concatenate([population[elites], children]),
        parents=parents,
        crossover=method,
        mutated=mutated,
    )
