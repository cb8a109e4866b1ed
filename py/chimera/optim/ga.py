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

Random numbers dominate a generation's cost on CPU, so each is drawn at the
resolution its use needs, all from explicit keys: crossover positions at
2**-16 (two per 32-bit word, four per threefry block: `random_words`),
uniform-crossover coins one bit each, and mutation -- at the default rate
1/dim -- only for the genes that mutate (`sparse_gaussian`: geometric gaps
between mutated positions, ~rate * size draws instead of two per gene).
The PRNG is the caller's key: any JAX implementation works and a fixed seed
reproduces a run. threefry2x32 (JAX's default) is the recommended one: on
XLA CPU rbg and unsafe_rbg keys made a whole generation 1.5x and 1.8x
slower (measured, bench/optimizers/README.md; `--prng-impl` reruns it).

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
from jax.extend import random as jax_random_ext

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
      mutation_rate: per-gene probability of Gaussian mutation (None: 1/dim).
        Rates up to SPARSE_MUTATION_MAX_RATE draw only the mutated genes
        (sparse_gaussian); above it every gene draws a coin (2**-16
        resolution) and a deviate.
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
    fitness: jax.Array  # (n,) in loop.fitness_dtype: tournaments compare in full precision
    sigma: jax.Array  # (n, d) absolute mutation steps of the current generation
    offspring_sigma: jax.Array  # (n, d) steps of the last asked offspring
    best_x: jax.Array  # (d,)
    best_f: jax.Array  # ()
    generation: jax.Array  # () int32: generations told
    evaluations: jax.Array  # () int32
    nonfinite: jax.Array  # () int32: non-finite fitness values told


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
        fitness=jnp.full((config.pop_size,), jnp.inf, loop.fitness_dtype(space)),
        sigma=sigma,
        offspring_sigma=sigma,
        best_x=population[0],
        best_f=jnp.asarray(jnp.inf, loop.fitness_dtype(space)),
        generation=jnp.asarray(0, jnp.int32),
        evaluations=jnp.asarray(0, jnp.int32),
        nonfinite=jnp.asarray(0, jnp.int32),
    )


def tournament(key: jax.Array, fitness: jax.Array, count: int, size: int) -> jax.Array:
    """Indices of `count` tournament winners (lowest fitness of `size` drawn)."""
    contestants = jax.random.randint(key, (count, size), 0, fitness.shape[0])
    winner = jnp.argmin(fitness[contestants], axis=1)
    return jnp.take_along_axis(contestants, winner[:, None], axis=1)[:, 0]


def recombine(
    key: jax.Array, a: jax.Array, b: jax.Array, u: Optional[jax.Array], config: GAConfig
) -> jax.Array:
    """One child per row pair (a[i], b[i]) by the configured crossover.

    u: per-gene uniforms on (0, 1): the blend position, or the uniform
    crossover's coin (u < 0.5 takes a's gene); unused by single-point.
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
    ONE 32-bit draw per gene (layer 7's breeding uses both: a crossover
    position and a mutation coin per gene)."""
    bits = jax.random.bits(key, shape, jnp.uint32)
    scale = 1.0 / 65536.0
    high = ((bits >> 16).astype(dtype) + 0.5) * scale
    low = ((bits & 0xFFFF).astype(dtype) + 0.5) * scale
    return high, low


def random_words(key: jax.Array, rows: int, words: int) -> jax.Array:
    """(rows, words) random uint32 using both halves of every threefry block.

    jax.random.bits (partitionable threefry, JAX's default) spends one
    threefry2x32 block -- two 32-bit outputs -- on each word and XORs the
    halves; here each block yields two words, so half the blocks are hashed.
    Counters are (row, column) pairs, unique per element, so sharded rows
    draw without communication, as with jax.random.bits. Keys of other
    implementations (rbg, unsafe_rbg) go through jax.random.bits.
    """
    if jax.random.key_impl(key) != "threefry2x32":
        return jax.random.bits(key, (rows, words), jnp.uint32)
    k1, k2 = jax.random.key_data(key)
    half = -(-words // 2)
    row = jax.lax.broadcasted_iota(jnp.uint32, (rows, half), 0)
    column = jax.lax.broadcasted_iota(jnp.uint32, (rows, half), 1)
    left, right = jax_random_ext.threefry2x32_p.bind(k1, k2, row, column)
    return jnp.concatenate([left, right], axis=1)[:, :words]


def packed_uniforms(key: jax.Array, shape: tuple[int, int], dtype, resolution_bits: int = 16) -> jax.Array:
    """Uniforms on (0, 1) at 2**-resolution_bits resolution, 32 // resolution_bits
    of them cut from each 32-bit random word along the last axis.

    Random bits are the GA's main cost on CPU (threefry): a blend position
    needs no finer grain than 2**-16 (two per word, four per threefry
    block), a crossover coin one bit (32 per word).
    """
    if not 1 <= resolution_bits <= 16:
        raise ValueError(f"resolution_bits: must be in [1, 16], got {resolution_bits}")
    rows, columns = shape
    per_word = 32 // resolution_bits
    words = -(-columns // per_word)
    bits = random_words(key, rows, words)
    shifts = jnp.arange(per_word, dtype=jnp.uint32) * resolution_bits
    values = (bits[:, :, None] >> shifts) & ((1 << resolution_bits) - 1)
    values = values.reshape(rows, words * per_word)[:, :columns]
    return (values.astype(dtype) + 0.5) * (1.0 / (1 << resolution_bits))


# Above this per-gene rate the dense draw (one coin and one deviate per gene)
# beats the sparse one (see sparse_gaussian). Measured on XLA CPU at 1024 x 100
# genes, sparse vs dense: 0.2 vs 1.8 ms at rate 0.01, 1.3 vs 1.7 ms at 1/16,
# 2.2 vs 1.6 ms at 1/8.
SPARSE_MUTATION_MAX_RATE = 1.0 / 16.0
# Probability bound for the sparse draw running out of mutations (per call).
_SPARSE_TAIL = 1e-12


def sparse_capacity(genes: int, rate: float) -> int:
    """Mutations the sparse draw holds: the mean plus a Bernstein margin t with
    P(Binomial(genes, rate) >= mean + t) <= exp(-t^2 / (2 (var + t / 3))) = 1e-12."""
    mean, var = genes * rate, genes * rate * (1.0 - rate)
    c = 2.0 * math.log(1.0 / _SPARSE_TAIL)
    margin = (c / 3.0 + math.sqrt(c * c / 9.0 + 4.0 * c * var)) / 2.0
    return min(genes, int(math.ceil(mean + margin)) + 1)


def sparse_gaussian(key: jax.Array, shape: tuple[int, int], rate: float, dtype) -> jax.Array:
    """N(0, 1) at each position of `shape` with probability `rate` (independently),
    0 elsewhere, drawing only about rate * size numbers instead of two per gene.

    The mutated positions of the flattened array are a Bernoulli(rate)
    process: successive gaps are Geometric(rate), drawn by inversion
    (P(gap >= g) = (1 - rate)**g), then summed. `sparse_capacity` mutations
    are drawn; the chance that a generation needs more is below 1e-12
    (the surplus would stay unmutated).
    """
    genes = math.prod(shape)
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate: the sparse draw needs 0 < rate < 1, got {rate}")
    if genes >= 2**30:  # positions are int32; one past the end must not overflow
        raise ValueError(f"shape: at most 2**30 genes, got {genes}")
    capacity = sparse_capacity(genes, rate)
    gap_key, deviate_key = jax.random.split(key)
    u = jax.random.uniform(gap_key, (capacity,), dtype)  # [0, 1)
    gaps = jnp.minimum(jnp.floor(jnp.log1p(-u) / math.log1p(-rate)), genes).astype(jnp.int32)
    positions = jnp.cumsum(gaps + 1) - 1
    # Past the end everything is dropped, including sums that wrapped around.
    inside = jax.lax.cummin((positions < genes).astype(jnp.int32)) > 0
    positions = jnp.where(inside, positions, genes)
    deviates = jax.random.normal(deviate_key, (capacity,), dtype)
    flat = jnp.zeros(genes, dtype).at[positions].set(deviates, mode="drop", unique_indices=True)
    return flat.reshape(shape)


def mutation_deviates(key: jax.Array, shape: tuple[int, int], rate: float, dtype) -> jax.Array:
    """N(0, 1) where a gene mutates (probability `rate` each), else 0."""
    if rate <= 0.0:
        return jnp.zeros(shape, dtype)
    if rate <= SPARSE_MUTATION_MAX_RATE and math.prod(shape) < 2**30:
        return sparse_gaussian(key, shape, rate, dtype)
    coin_key, deviate_key = jax.random.split(key)
    deviates = jax.random.normal(deviate_key, shape, dtype)
    if rate >= 1.0:
        return deviates
    return jnp.where(packed_uniforms(coin_key, shape, dtype) < rate, deviates, 0.0)


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


# Per-gene uniform resolution each crossover needs (None: no per-gene draw).
_CROSSOVER_RESOLUTION_BITS = {"single_point": None, "uniform": 1, "blend": 16}


def breed(key: jax.Array, state: GAState, config: GAConfig) -> tuple[jax.Array, jax.Array]:
    """Offspring of the current generation and their mutation steps."""
    n = config.pop_size
    select_key, cross_key, uniform_key, sigma_key, noise_key = jax.random.split(key, 5)
    parents = tournament(select_key, state.fitness, 2 * n, config.tournament_size)
    first, second = parents[:n], parents[n:]
    shape, dtype = (n, config.space.dim), config.space.jdtype
    resolution = _CROSSOVER_RESOLUTION_BITS[config.crossover]
    u_cross = None if resolution is None else packed_uniforms(uniform_key, shape, dtype, resolution)
    children = recombine(cross_key, state.population[first], state.population[second], u_cross, config)
    if config.self_adaptive:  # every gene mutates, with its own step
        sigma = _adapt_sigma(sigma_key, state.sigma[first], config)
        noise = sigma * jax.random.normal(noise_key, shape, dtype)
    else:  # every individual shares the configured steps
        sigma = state.sigma
        noise = _initial_sigma(config) * mutation_deviates(noise_key, shape, config.gene_mutation_rate, dtype)
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


def _update(state: GAState, population: jax.Array, fitness: jax.Array, config: GAConfig) -> GAState:
    """Takes the evaluated offspring; elites of the old generation replace the
    worst offspring where they are better."""
    fitness = fitness.astype(state.fitness.dtype)
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
    return state._replace(population=population, fitness=fitness, sigma=sigma, offspring_sigma=sigma)


tell = loop.make_tell(_update, lambda config: config.pop_size)


STRATEGY = loop.Strategy("ga", init, ask, tell)


def run(key, config: GAConfig, objective: loop.Objective, generations: int, progress=None, progress_every: int = 10):
    """Whole GA run under lax.scan: (final state, per-generation History)."""
    return loop.run(STRATEGY, key, config, objective, generations, progress, progress_every)
