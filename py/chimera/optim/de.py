"""Differential evolution: rand/1/bin and current-to-best/1/bin.

Written here (evosax's DE keeps a different state layout and has no bounds
repair or integer genes). Every individual gets a trial vector in one
vectorised step; the trial replaces its target when it is no worse.
Default dtype float32 (difference vectors and comparisons only).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from chimera.optim import loop
from chimera.optim.space import Space

Variant = Literal["rand1bin", "current_to_best1bin"]
VARIANTS = ("rand1bin", "current_to_best1bin")


@dataclasses.dataclass(frozen=True)
class DEConfig:
    """space; pop_size (>= 4); differential weight F; crossover rate CR; variant."""

    space: Space
    pop_size: int = 64
    differential_weight: float = 0.5
    crossover_rate: float = 0.9
    variant: Variant = "rand1bin"

    def __post_init__(self) -> None:
        if self.pop_size < 4:
            raise ValueError(f"pop_size: must be at least 4, got {self.pop_size}")
        if not 0.0 < self.differential_weight <= 2.0:
            raise ValueError(f"differential_weight: must be in (0, 2], got {self.differential_weight}")
        if not 0.0 <= self.crossover_rate <= 1.0:
            raise ValueError(f"crossover_rate: must be in [0, 1], got {self.crossover_rate}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant: must be one of {VARIANTS}, got {self.variant!r}")


class DEState(NamedTuple):
    population: jax.Array
    fitness: jax.Array  # in loop.fitness_dtype: trial and target compare in full precision
    best_x: jax.Array
    best_f: jax.Array
    generation: jax.Array
    evaluations: jax.Array
    nonfinite: jax.Array  # () int32: non-finite fitness values told


@functools.partial(jax.jit, static_argnames="config")
def init(key: jax.Array, config: DEConfig) -> DEState:
    space = config.space
    population = space.uniform(key, config.pop_size)
    return DEState(
        population=population,
        fitness=jnp.full((config.pop_size,), jnp.inf, loop.fitness_dtype(space)),
        best_x=population[0],
        best_f=jnp.asarray(jnp.inf, loop.fitness_dtype(space)),
        generation=jnp.asarray(0, jnp.int32),
        evaluations=jnp.asarray(0, jnp.int32),
        nonfinite=jnp.asarray(0, jnp.int32),
    )


def distinct_partners(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """For each i, three indices distinct from each other and from i."""
    ka, kb, kc = jax.random.split(key, 3)
    a = jax.random.randint(ka, (n,), 1, n)
    b = jax.random.randint(kb, (n,), 1, n - 1)
    b = b + (b >= a)
    low, high = jnp.minimum(a, b), jnp.maximum(a, b)
    c = jax.random.randint(kc, (n,), 1, n - 2)
    c = c + (c >= low)
    c = c + (c >= high)
    i = jnp.arange(n)
    return (i + a) % n, (i + b) % n, (i + c) % n


@functools.partial(jax.jit, static_argnames="config")
def ask(key: jax.Array, state: DEState, config: DEConfig) -> tuple[jax.Array, DEState]:
    """Trial vectors (the first call: the initial population)."""
    n, d = config.pop_size, config.space.dim
    pick_key, cross_key, forced_key = jax.random.split(key, 3)
    r1, r2, r3 = distinct_partners(pick_key, n)
    pop, f = state.population, config.differential_weight
    if config.variant == "rand1bin":
        mutant = pop[r1] + f * (pop[r2] - pop[r3])
    else:
        best = pop[jnp.argmin(state.fitness)]
        mutant = pop + f * (best - pop) + f * (pop[r1] - pop[r2])
    forced = jax.random.randint(forced_key, (n, 1), 0, d) == jnp.arange(d)[None, :]
    take = jax.random.bernoulli(cross_key, config.crossover_rate, (n, d)) | forced
    trial = config.space.repair(jnp.where(take, mutant, pop))
    return jnp.where(state.generation == 0, pop, trial), state


def _update(state: DEState, population: jax.Array, fitness: jax.Array, config: DEConfig) -> DEState:
    """Each trial replaces its target when it is no worse."""
    better = fitness <= state.fitness
    return state._replace(
        population=jnp.where(better[:, None], population, state.population),
        fitness=jnp.where(better, fitness, state.fitness).astype(state.fitness.dtype),
    )


tell = loop.make_tell(_update, lambda config: config.pop_size)


STRATEGY = loop.Strategy("de", init, ask, tell)


def run(key, config: DEConfig, objective: loop.Objective, generations: int, progress=None, progress_every: int = 10):
    return loop.run(STRATEGY, key, config, objective, generations, progress, progress_every)
