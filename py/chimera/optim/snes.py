"""Separable natural evolution strategy (SNES, Schaul et al. 2011).

Written here (small, and its ask/tell shape matches this package's): a
diagonal Gaussian N(mean, diag(sigma^2)) moved along the natural gradient of
rank-based utilities. The utilities depend only on ranks, so fitness ties in
float32 cannot blow anything up; sigma is floored at the dtype's tiny value
times the start step so it never underflows to zero or denormals.

Default dtype float32 (elementwise updates, no matrix inverse, ranks only).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from chimera.optim import loop
from chimera.optim.space import Space


@dataclasses.dataclass(frozen=True)
class SNESConfig:
    """space; popsize (None: 4 + floor(3 ln d)); sigma0 (None: a quarter of the
    mean width of the start region); init_region (None: the space's bounds);
    learning rates for the mean and the log-sigmas (None: (3 + ln d)/(5 sqrt d))."""

    space: Space
    popsize: Optional[int] = None
    sigma0: Optional[float] = None
    init_region: Optional[tuple[float, float]] = None
    lr_mean: float = 1.0
    lr_sigma: Optional[float] = None

    def __post_init__(self) -> None:
        if self.popsize is not None and self.popsize < 2:
            raise ValueError(f"popsize: must be at least 2, got {self.popsize}")
        if self.sigma0 is not None and not self.sigma0 > 0:
            raise ValueError(f"sigma0: must be positive, got {self.sigma0}")

    @property
    def size(self) -> int:
        return self.popsize if self.popsize is not None else 4 + int(3 * math.log(self.space.dim))

    @property
    def sigma_rate(self) -> float:
        d = self.space.dim
        return self.lr_sigma if self.lr_sigma is not None else (3 + math.log(d)) / (5 * math.sqrt(d))

    def region(self) -> tuple[float, float]:
        if self.init_region is not None:
            return self.init_region
        return min(self.space.lower), max(self.space.upper)


class SNESState(NamedTuple):
    mean: jax.Array
    sigma: jax.Array
    noise: jax.Array  # (popsize, d) z of the last ask
    best_x: jax.Array
    best_f: jax.Array  # in loop.fitness_dtype
    generation: jax.Array
    evaluations: jax.Array
    nonfinite: jax.Array  # () int32: non-finite fitness values told


def utilities(n: int, dtype) -> jax.Array:
    """Rank-based fitness shaping: best rank gets the largest weight, sum 0."""
    ranks = jnp.arange(1, n + 1, dtype=dtype)
    raw = jnp.maximum(0.0, jnp.log(n / 2 + 1) - jnp.log(ranks))
    return raw / jnp.sum(raw) - 1.0 / n


@functools.partial(jax.jit, static_argnames="config")
def init(key: jax.Array, config: SNESConfig) -> SNESState:
    space = config.space
    low, high = config.region()
    mean = jax.random.uniform(key, (space.dim,), space.jdtype, low, high)
    sigma0 = config.sigma0 if config.sigma0 is not None else 0.25 * (high - low)
    return SNESState(
        mean=mean,
        sigma=jnp.full((space.dim,), sigma0, space.jdtype),
        noise=jnp.zeros((config.size, space.dim), space.jdtype),
        best_x=mean,
        best_f=jnp.asarray(jnp.inf, loop.fitness_dtype(space)),
        generation=jnp.asarray(0, jnp.int32),
        evaluations=jnp.asarray(0, jnp.int32),
        nonfinite=jnp.asarray(0, jnp.int32),
    )


@functools.partial(jax.jit, static_argnames="config")
def ask(key: jax.Array, state: SNESState, config: SNESConfig) -> tuple[jax.Array, SNESState]:
    noise = jax.random.normal(key, (config.size, config.space.dim), config.space.jdtype)
    population = config.space.repair(state.mean + state.sigma * noise)
    return population, state._replace(noise=noise)


def _update(state: SNESState, population: jax.Array, fitness: jax.Array, config: SNESConfig) -> SNESState:
    """Natural-gradient step from the ranks (taken in the fitness's own precision)."""
    n, dtype = config.size, config.space.jdtype
    order = jnp.argsort(fitness)
    weights = jnp.zeros((n,), dtype).at[order].set(utilities(n, dtype))
    grad_mean = weights @ state.noise
    grad_sigma = weights @ (state.noise * state.noise - 1)
    mean = state.mean + config.lr_mean * state.sigma * grad_mean
    floor = jnp.finfo(dtype).tiny * 1e6
    sigma = jnp.maximum(state.sigma * jnp.exp(0.5 * config.sigma_rate * grad_sigma), floor)
    return state._replace(mean=config.space.repair(mean[None])[0], sigma=sigma)


tell = loop.make_tell(_update, lambda config: config.size)


STRATEGY = loop.Strategy("snes", init, ask, tell)


def run(key, config: SNESConfig, objective: loop.Objective, generations: int, progress=None, progress_every: int = 10):
    return loop.run(STRATEGY, key, config, objective, generations, progress, progress_every)
