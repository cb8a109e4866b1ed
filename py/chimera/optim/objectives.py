"""Batch objectives `f(population[n, d]) -> fitness[n]` (minimised).

JAX test functions with known optima, a host-callback wrapper for objectives
that run outside XLA (layer 4's kernel), and the design's agent fitness — the
only place its weights live.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


def sphere(x: jax.Array) -> jax.Array:
    """sum x_i^2; optimum 0 at 0."""
    return jnp.sum(x * x, axis=-1)


def ellipsoid(x: jax.Array) -> jax.Array:
    """sum 10^(6 i/(d-1)) x_i^2 (condition 1e6); optimum 0 at 0."""
    d = x.shape[-1]
    scale = jnp.power(10.0, 6.0 * jnp.arange(d, dtype=x.dtype) / max(d - 1, 1)).astype(x.dtype)
    return jnp.sum(scale * x * x, axis=-1)


def rosenbrock(x: jax.Array) -> jax.Array:
    """sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; optimum 0 at 1."""
    head, tail = x[..., :-1], x[..., 1:]
    return jnp.sum(100.0 * (tail - head * head) ** 2 + (1.0 - head) ** 2, axis=-1)


def cos_2pi(x: jax.Array) -> jax.Array:
    """cos(2 pi x), with the period folded out exactly before the angle is formed.

    r = |x - round(x)| is exact, the quarter-wave symmetry maps it to [0, 1/4],
    and cos on [0, pi/2] is its Taylor polynomial to the term below the
    dtype's epsilon (theta^12 in float32, theta^20 in float64). In float32
    that errs by <= 2e-7 where jnp.cos(2 pi x) errs by ~1e-5 at |x| ~ 40 (the
    product 2 pi x is rounded first), and it is ~10x faster on XLA CPU, whose
    cosine is not vectorised (measured: bench/optimizers/README.md).
    """
    r = jnp.abs(x - jnp.round(x))
    flip = r > 0.25  # cos(2 pi r) = -cos(2 pi (1/2 - r))
    theta = (2.0 * math.pi) * jnp.where(flip, 0.5 - r, r)
    theta2 = theta * theta
    terms = 7 if jnp.finfo(x.dtype).bits <= 32 else 11
    poly = jnp.full_like(x, (-1) ** (terms - 1) / math.factorial(2 * terms - 2))
    for k in range(terms - 2, -1, -1):
        poly = poly * theta2 + (-1) ** k / math.factorial(2 * k)
    return jnp.where(flip, -poly, poly)


def rastrigin(x: jax.Array) -> jax.Array:
    """10 d + sum x_i^2 - 10 cos(2 pi x_i); optimum 0 at 0 (domain [-5.12, 5.12])."""
    return 10.0 * x.shape[-1] + jnp.sum(x * x - 10.0 * cos_2pi(x), axis=-1)


def ackley(x: jax.Array) -> jax.Array:
    """Ackley's function; optimum 0 at 0 (domain [-32.768, 32.768])."""
    d = x.shape[-1]
    rms = jnp.sqrt(jnp.sum(x * x, axis=-1) / d)
    mean_cos = jnp.sum(cos_2pi(x), axis=-1) / d
    return -20.0 * jnp.exp(-0.2 * rms) - jnp.exp(mean_cos) + 20.0 + jnp.e


def schwefel(x: jax.Array) -> jax.Array:
    """418.9829 d - sum x_i sin(sqrt|x_i|); optimum ~0 at 420.9687 (domain [-500, 500])."""
    return 418.9829 * x.shape[-1] - jnp.sum(x * jnp.sin(jnp.sqrt(jnp.abs(x))), axis=-1)


class TestFunction(NamedTuple):
    fn: Callable[[jax.Array], jax.Array]
    lower: float
    upper: float
    optimum: float


TEST_FUNCTIONS: dict[str, TestFunction] = {
    "sphere": TestFunction(sphere, -5.0, 5.0, 0.0),
    "ellipsoid": TestFunction(ellipsoid, -5.0, 5.0, 0.0),
    "rosenbrock": TestFunction(rosenbrock, -5.0, 10.0, 0.0),
    "rastrigin": TestFunction(rastrigin, -5.12, 5.12, 0.0),
    "ackley": TestFunction(ackley, -32.768, 32.768, 0.0),
    "schwefel": TestFunction(schwefel, -500.0, 500.0, 0.0),
}


def host_objective(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[jax.Array], jax.Array]:
    """Wraps a host (numpy) batch objective so it runs inside jit/scan.

    `fn` receives the whole population as one (n, d) numpy array and returns
    n fitness values: one host round trip per generation, not per individual.
    Values come back in the population's dtype; non-finite ones rank worst.
    """

    def host(population: np.ndarray) -> np.ndarray:
        values = np.asarray(fn(np.asarray(population)), dtype=population.dtype).reshape(-1)
        if values.shape != (population.shape[0],):
            raise ValueError(f"objective returned {values.shape[0]} values for {population.shape[0]} individuals")
        return values

    def objective(population: jax.Array) -> jax.Array:
        shape = jax.ShapeDtypeStruct((population.shape[0],), population.dtype)
        return jax.pure_callback(host, shape, population, vmap_method="sequential")

    return objective


# Design §2, layer 7: the default fitness of an agent genome (higher is better).
AGENT_FITNESS_WEIGHTS = {"accuracy": 0.4, "latency": 0.3, "throughput": 0.2, "reliability": 0.1}
LATENCY_SCALE_MS = 100.0
THROUGHPUT_SCALE = 1000.0


def agent_fitness(accuracy, latency_ms, throughput, error_rate):
    """0.4 accuracy + 0.3/(1 + latency_ms/100) + 0.2 min(throughput/1000, 1) + 0.1 (1 - error_rate).

    Works on scalars, numpy or JAX arrays (elementwise); in [0, 1] for inputs in
    their ranges. The engine minimises, so optimise `-agent_fitness(...)`.
    """
    w = AGENT_FITNESS_WEIGHTS
    xp = jnp if any(isinstance(v, jax.Array) for v in (accuracy, latency_ms, throughput, error_rate)) else np
    return (
        w["accuracy"] * accuracy
        + w["latency"] / (1.0 + latency_ms / LATENCY_SCALE_MS)
        + w["throughput"] * xp.minimum(throughput / THROUGHPUT_SCALE, 1.0)
        + w["reliability"] * (1.0 - error_rate)
    )
