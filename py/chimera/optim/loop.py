"""The ask/tell contract every strategy follows, and one `run` for all of them.

A strategy is three pure functions over a pytree state (minimisation):

    init(key, config) -> state
    ask(key, state, config) -> (population[n, d], state)
    tell(state, population, fitness[n], config) -> state

and every state carries `best_x`, `best_f`, `evaluations` and `generation`.
`run` drives ask -> objective -> tell under one `lax.scan`, so a whole run is
one XLA program: no Python per generation, none per individual.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from chimera.optim.sharding import constrain_rows
from chimera.optim.space import diversity

Objective = Callable[[jax.Array], jax.Array]
ProgressHook = Callable[[int, float, float, int], None]


class Strategy(NamedTuple):
    """The three functions of an ask/tell strategy (hashable, so jit-static).

    counted_rows(state, config) -> bool[n], optional: which rows of the asked
    population count as this generation's members (CMA-ES keeps a static
    max_popsize and marks rows past the current run's size inactive); None:
    every row.
    """

    name: str
    init: Callable[..., Any]
    ask: Callable[..., Any]
    tell: Callable[..., Any]
    counted_rows: Optional[Callable[..., jax.Array]] = None


class History(NamedTuple):
    """Per-generation population dynamics (arrays of length `generations`).

    best: best fitness found so far; mean: mean finite fitness of the
    generation; diversity: RMS pairwise distance of the generation's
    population; evaluations: cumulative objective evaluations;
    generation_best: best fitness evaluated in this generation (inf if
    none is finite). All over the generation's counted rows.
    """

    best: jax.Array
    mean: jax.Array
    diversity: jax.Array
    evaluations: jax.Array
    generation_best: jax.Array


def clean_fitness(fitness: jax.Array) -> jax.Array:
    """NaN fitness (a failed evaluation) ranks as the worst possible value."""
    return jnp.where(jnp.isnan(fitness), jnp.inf, fitness)


def finite_mean(fitness: jax.Array, counted: Optional[jax.Array] = None) -> jax.Array:
    finite = jnp.isfinite(fitness) if counted is None else jnp.isfinite(fitness) & counted
    total = jnp.sum(jnp.where(finite, fitness, 0.0))
    return total / jnp.maximum(jnp.sum(finite), 1)


def _report(hook: ProgressHook, generation, best, mean, evaluations) -> None:
    hook(int(generation), float(best), float(mean), int(evaluations))


_STATIC = ("strategy", "config", "objective", "generations", "progress", "progress_every")


@functools.partial(jax.jit, static_argnames=_STATIC)
def run(
    strategy: Strategy,
    key: jax.Array,
    config: Any,
    objective: Objective,
    generations: int,
    progress: Optional[ProgressHook] = None,
    progress_every: int = 10,
) -> tuple[Any, History]:
    """Runs `generations` ask/evaluate/tell steps from `strategy.init` under `lax.scan`.

    The population is laid out over all JAX devices (rows sharded on a 1-D
    mesh) so evaluation runs data-parallel wherever JAX places it.
    `progress(generation, best, mean, evaluations)` is called on the host every
    `progress_every` generations (and at the last) through `jax.debug.callback`.
    """
    init_key, loop_key = jax.random.split(key)
    state = strategy.init(init_key, config)
    return advance(strategy, state, loop_key, config, objective, generations, progress, progress_every)


@functools.partial(jax.jit, static_argnames=_STATIC)
def advance(
    strategy: Strategy,
    state: Any,
    key: jax.Array,
    config: Any,
    objective: Objective,
    generations: int,
    progress: Optional[ProgressHook] = None,
    progress_every: int = 10,
) -> tuple[Any, History]:
    """Continues a strategy's `state` for `generations` more steps (see `run`)."""
    last = state.generation + generations

    def step(state, key):
        population, state = strategy.ask(key, state, config)
        counted = None if strategy.counted_rows is None else strategy.counted_rows(state, config)
        population = constrain_rows(population)
        fitness = objective(population)
        state = strategy.tell(state, population, fitness, config)
        fitness = clean_fitness(fitness)
        scored = fitness if counted is None else jnp.where(counted, fitness, jnp.inf)
        record = History(
            best=state.best_f,
            mean=finite_mean(fitness, counted),
            diversity=diversity(population, counted),
            evaluations=state.evaluations,
            generation_best=jnp.min(scored),
        )
        if progress is not None:
            due = (state.generation % progress_every == 0) | (state.generation == last)
            jax.lax.cond(
                due,
                lambda: jax.debug.callback(
                    functools.partial(_report, progress),
                    state.generation,
                    state.best_f,
                    record.mean,
                    state.evaluations,
                ),
                lambda: None,
            )
        return state, record

    return jax.lax.scan(step, state, jax.random.split(key, generations))
