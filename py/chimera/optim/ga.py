"""Genetic algorithm: tournament selection, crossover, Gaussian mutation, elitism.

Ask/tell (layer 7 drives it over gRPC, one generation per round trip):

    state = ga.init(key, config)
    population, state = ga.ask(key, state, config)   # the first ask returns the
    state = ga.tell(state, population, fitness, config)  # random initial population

or a whole run under `lax.scan`: `ga.run(key, config, objective, generations)`.

Operators (all vectorised over the population, no Python per individual):
tournament selection of size k; one child per parent pair by single-point,
uniform or blend (BLX-alpha) crossover; Gaussian mutation with a per-gene
sigma (a fraction of each gene's range), optionally self-adapted per
individual (log-normal, Schwefel's tau rules); `elite` best of the previous
generation replace the worst children when they are better; box bounds by
clip or reflect; integer genes rounded after variation.

Default dtype float32: selection only compares fitness values and variation is
elementwise, so single precision loses nothing that matters, halves memory
traffic (the bottleneck at population 65,536) and represents every integer gene
exactly up to 2**24. float64 works unchanged (Space(dtype="float64") with x64).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Literal, NamedTuple, Optional

import jax
import jax.numpy as jnp

from chimera.optim import loop
from chimera.optim.space import Scalars, Space

Crossover = Literal["single_point", "uniform", "blend"]
CROSSOVERS = ("single_point", "uniform", "blend")


@dataclasses.dataclass(frozen=True)
class GAConfig:
    """Static GA settings (hashable: passed to jit as a static argument).

    Attributes:
      space: genes, bounds, integer flags, dtype.
      pop_size: individuals per generation.
      tournament_size: contestants per tournament (selection pressure).
      crossover: "single_point", "uniform" or "blend" (BLX-alpha).
      crossover_rate: probability that a pair is recombined (else the first
        parent is copied).
      blend_alpha: BLX-alpha's extension of the parents' interval.
      mutation_rate: per-gene probability of Gaussian mutation (None: 1/dim;
        resolved to 2**-16, see gene_uniforms).
      mutation_sigma: per-gene mutation step as a fraction of (upper - lower);
        one float for all genes or one per gene.
      self_adaptive: each individual carries its own per-gene sigmas, mutated
        log-normally before they are used (and then every gene mutates).
      elite: best individuals carried over from the previous generation.
    """

    space: Space
    pop_size: int = 256
    tournament_size: int = 3
    crossover: Crossover = "blend"
    crossover_rate: float = 0.9
    blend_alpha: float = 0.5
    mutation_rate: Optional[float] = None
    mutation_sigma: Scalars = 0.1
    self_adaptive: bool = False
    elite: int = 2

    def __post_init__(self) -> None:
        if self.pop_size < 2:
            raise ValueError(f"pop_size: must be at least 2, got {self.pop_size}")
        if not 1 <= self.tournament_size <= self.pop_size:
            raise ValueError(f"tournament_size: must be in [1, pop_size], got {self.tournament_size}")
        if self.crossover not in CROSSOVERS:
            raise ValueError(f"crossover: must be one of {CROSSOVERS}, got {self.crossover!r}")
        if not 0.0 <= self.crossover_rate <= 1.0:
            raise ValueError(f"crossover_rate: must be in [0, 1], got {self.crossover_rate}")
        if self.blend_alpha < 0:
            raise ValueError(f"blend_alpha: must be >= 0, got {self.blend_alpha}")
        if self.mutation_rate is not None and not 0.0 <= self.mutation_rate <= 1.0:
            raise ValueError(f"mutation_rate: must be in [0, 1], got {self.mutation_rate}")
        sigma = (
            (float(self.mutation_sigma),) * self.space.dim
            if isinstance(self.mutation_sigma, (int, float))
            else tuple(float(s) for s in self.mutation_sigma)
        )
        if len(sigma) != self.space.dim or any(not (s > 0 and math.isfinite(s)) for s in sigma):
            raise ValueError("mutation_sigma: must be positive and finite, one value or one per gene")
        object.__setattr__(self, "mutation_sigma", sigma)
        if not 0 <= self.elite < self.pop_size:
            raise ValueError(f"elite: must be in [0, pop_size), got {self.elite}")

    @property
    def gene_mutation_rate(self) -> float:
        return self.mutation_rate if self.mutation_rate is not None else 1.0 / self.space.dim


class GAState(NamedTuple):
    """GA state (a pytree). `fitness` is +inf until the population is told."""

    population: jax.Array  # (n, d) current, evaluated generation
    fitness: jax.Array  # (n,)
    sigma: jax.Array  # (n, d) absolute mutation steps of the current generation
    offspring_sigma: jax.Array  # (n, d) steps of the last asked offspring
    best_x: jax.Array  # (d,)
    best_f: jax.Array  # ()
    generation: jax.Array  # () int32: generations told
    evaluations: jax.Array  # () int32


def _initial_sigma(config: GAConfig) -> jax.Array:
    lower, upper = config.space.bounds()
    return jnp.asarray(config.mutation_sigma, config.space.jdtype) * (upper - lower)


@functools.partial(jax.jit, static_argnames="config")
def init(key: jax.Array, config: GAConfig) -> GAState:
    space = config.space
    population = space.uniform(key, config.pop_size)
    sigma = jnp.broadcast_to(_initial_sigma(config), population.shape)
    return GAState(
        population=population,
        fitness=jnp.full((config.pop_size,), jnp.inf, space.jdtype),
        sigma=sigma,
        offspring_sigma=sigma,
        best_x=population[0],
        best_f=jnp.asarray(jnp.inf, space.jdtype),
        generation=jnp.asarray(0, jnp.int32),
        evaluations=jnp.asarray(0, jnp.int32),
    )


def tournament(key: jax.Array, fitness: jax.Array, count: int, size: int) -> jax.Array:
    """Indices of `count` tournament winners (lowest fitness of `size` drawn)."""
    contestants = jax.random.randint(key, (count, size), 0, fitness.shape[0])
    winner = jnp.argmin(fitness[contestants], axis=1)
    return jnp.take_along_axis(contestants, winner[:, None], axis=1)[:, 0]


def recombine(key: jax.Array, a: jax.Array, b: jax.Array, u: jax.Array, config: GAConfig) -> jax.Array:
    """One child per row pair (a[i], b[i]) by the configured crossover.

    u: per-gene uniforms on (0, 1) (the blend position, the uniform coin).
    """
    n, d = a.shape
    pick_key, point_key = jax.random.split(key)
    if config.crossover == "single_point":
        point = jax.random.randint(point_key, (n, 1), 1, max(d, 2))
        child = jnp.where(jnp.arange(d)[None, :] < point, a, b)
    elif config.crossover == "uniform":
        child = jnp.where(u < 0.5, a, b)
    else:  # blend: uniform on [min - alpha I, max + alpha I], I = |a - b|
        low, high = jnp.minimum(a, b), jnp.maximum(a, b)
        spread = config.blend_alpha * (high - low)
        child = (low - spread) + u * (high - low + 2 * spread)
    recombined = jax.random.bernoulli(pick_key, config.crossover_rate, (n, 1))
    return jnp.where(recombined, child, a)


def gene_uniforms(key: jax.Array, shape: tuple[int, ...], dtype) -> tuple[jax.Array, jax.Array]:
    """Two independent per-gene uniforms on (0, 1) with 16-bit resolution from
    ONE 32-bit draw: the PRNG is the GA's main cost, and crossover positions and
    mutation coins need no finer grain than 2**-16."""
    bits = jax.random.bits(key, shape, jnp.uint32)
    scale = 1.0 / 65536.0
    high = ((bits >> 16).astype(dtype) + 0.5) * scale
    low = ((bits & 0xFFFF).astype(dtype) + 0.5) * scale
    return high, low


def _adapt_sigma(key: jax.Array, sigma: jax.Array, config: GAConfig) -> jax.Array:
    """Log-normal self-adaptation: sigma * exp(tau0 N(0,1) + tau N_i(0,1))."""
    n, d = sigma.shape
    tau_global = 1.0 / math.sqrt(2.0 * d)
    tau_gene = 1.0 / math.sqrt(2.0 * math.sqrt(d))
    global_key, gene_key = jax.random.split(key)
    exponent = tau_global * jax.random.normal(global_key, (n, 1), sigma.dtype) + tau_gene * jax.random.normal(
        gene_key, (n, d), sigma.dtype
    )
    lower, upper = config.space.bounds()
    width = upper - lower
    return jnp.clip(sigma * jnp.exp(exponent), 1e-6 * width, width)


def breed(key: jax.Array, state: GAState, config: GAConfig) -> tuple[jax.Array, jax.Array]:
    """Offspring of the current generation and their mutation steps."""
    n = config.pop_size
    select_key, cross_key, uniform_key, sigma_key, noise_key = jax.random.split(key, 5)
    parents = tournament(select_key, state.fitness, 2 * n, config.tournament_size)
    first, second = parents[:n], parents[n:]
    shape, dtype = (n, config.space.dim), config.space.jdtype
    u_cross, u_mutate = gene_uniforms(uniform_key, shape, dtype)
    children = recombine(cross_key, state.population[first], state.population[second], u_cross, config)
    deviates = jax.random.normal(noise_key, shape, dtype)
    if config.self_adaptive:  # every gene mutates, with its own step
        sigma = _adapt_sigma(sigma_key, state.sigma[first], config)
        noise = sigma * deviates
    else:  # every individual shares the configured steps
        sigma = state.sigma
        noise = jnp.where(u_mutate < config.gene_mutation_rate, _initial_sigma(config) * deviates, 0.0)
    return config.space.repair(children + noise), sigma


@functools.partial(jax.jit, static_argnames="config")
def ask(key: jax.Array, state: GAState, config: GAConfig) -> tuple[jax.Array, GAState]:
    """The next population to evaluate (the first call: the initial population)."""
    population, sigma = jax.lax.cond(
        state.generation == 0,
        lambda: (state.population, state.sigma),
        lambda: breed(key, state, config),
    )
    return population, state._replace(offspring_sigma=sigma)


@functools.partial(jax.jit, static_argnames="config")
def tell(state: GAState, population: jax.Array, fitness: jax.Array, config: GAConfig) -> GAState:
    """Takes the evaluated offspring; elites of the old generation replace the
    worst offspring where they are better."""
    expected = (config.pop_size, config.space.dim)
    if population.shape != expected or fitness.shape != (config.pop_size,):
        raise ValueError(
            f"population/fitness: expected shapes {expected} and {(config.pop_size,)}, "
            f"got {population.shape} and {fitness.shape}"
        )
    population = population.astype(state.population.dtype)
    fitness = loop.clean_fitness(fitness.astype(state.fitness.dtype))
    sigma = state.offspring_sigma
    if config.elite > 0:
        _, elite_idx = jax.lax.top_k(-state.fitness, config.elite)
        _, worst_idx = jax.lax.top_k(fitness, config.elite)
        better = state.fitness[elite_idx] < fitness[worst_idx]
        population = population.at[worst_idx].set(
            jnp.where(better[:, None], state.population[elite_idx], population[worst_idx])
        )
        fitness = fitness.at[worst_idx].set(jnp.where(better, state.fitness[elite_idx], fitness[worst_idx]))
        if config.self_adaptive:  # otherwise every row holds the same steps
            sigma = sigma.at[worst_idx].set(
                jnp.where(better[:, None], state.sigma[elite_idx], sigma[worst_idx])
            )
    best = jnp.argmin(fitness)
    improved = fitness[best] < state.best_f
    return GAState(
        population=population,
        fitness=fitness,
        sigma=sigma,
        offspring_sigma=sigma,
        best_x=jnp.where(improved, population[best], state.best_x),
        best_f=jnp.where(improved, fitness[best], state.best_f),
        generation=state.generation + 1,
        evaluations=state.evaluations + config.pop_size,
    )


STRATEGY = loop.Strategy("ga", init, ask, tell)


def run(key, config: GAConfig, objective: loop.Objective, generations: int, progress=None, progress_every: int = 10):
    """Whole GA run under lax.scan: (final state, per-generation History)."""
    return loop.run(STRATEGY, key, config, objective, generations, progress, progress_every)
