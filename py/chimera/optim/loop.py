"""The ask/tell contract every strategy follows, and one `run` for all of them.

A strategy is three pure functions over a pytree state (minimisation):

    init(key, config) -> state
    ask(key, state, config) -> (population[n, d], state)
    tell(state, population, fitness[n], config) -> state

and every state carries `best_x`, `best_f`, `evaluations`, `generation` and
`nonfinite`. `run` drives ask -> objective -> tell under one `lax.scan`, so a
whole run is one XLA program: no Python per generation, none per individual.

`make_tell` builds every strategy's `tell` (as evosax's base class does): it
checks the shapes, treats a non-finite fitness as the worst (and counts it),
keeps the best-so-far and the counters, and hands the strategy's own update
only the distribution's work. The fitness stays in its own precision through
all of this: selection needs only the order, and a float32 state must not
lose it by casting f values near a large f_opt to ties (a float64 fitness
needs jax_enable_x64; the state may still be float32).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp

from chimera.optim.sharding import constrain_rows
from chimera.optim.space import Space, diversity

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
    """A non-finite fitness (NaN from a failed evaluation, or +-inf) ranks as
    the worst possible value, +inf; the dtype is kept."""
    return jnp.where(jnp.isfinite(fitness), fitness, jnp.inf)


def fitness_dtype(space: Space) -> jnp.dtype:
    """The dtype a state keeps fitness values in: the widest float this process
    holds (float64 under jax_enable_x64, even for a float32 space), so that
    comparisons and ranks are never made in a narrower precision than the
    objective's."""
    return jnp.promote_types(space.jdtype, jax.dtypes.canonicalize_dtype(jnp.float64))


# update(state, population, fitness, config) -> state: the strategy's own
# distribution update; `fitness` is cleaned and in its own precision.
Update = Callable[[Any, jax.Array, jax.Array, Any], Any]


def make_tell(update: Update, rows: Callable[[Any], int], counted_rows: Optional[Callable[..., jax.Array]] = None):
    """A strategy's jitted `tell(state, population, fitness, config)`.

    rows(config): the asked population's row count. counted_rows: as in
    `Strategy` (None: every row). Around `update` it checks the shapes, cleans
    the fitness (non-finite -> +inf, counted in `state.nonfinite`), and keeps
    `best_x`/`best_f` (over the counted rows), `generation` and `evaluations`.
    """

    def tell(state: Any, population: jax.Array, fitness: jax.Array, config: Any) -> Any:
        n, d = rows(config), config.space.dim
        if population.shape != (n, d) or fitness.shape != (n,):
            raise ValueError(
                f"population/fitness: expected shapes {(n, d)} and {(n,)}, got {population.shape} and {fitness.shape}"
            )
        population = population.astype(state.best_x.dtype)  # the dtype the strategy keeps positions in
        fitness = jnp.asarray(fitness)
        if not jnp.issubdtype(fitness.dtype, jnp.floating):
            fitness = fitness.astype(fitness_dtype(config.space))
        counted = jnp.ones((n,), bool) if counted_rows is None else counted_rows(state, config)
        nonfinite = jnp.sum(counted & ~jnp.isfinite(fitness)).astype(jnp.int32)
        fitness = clean_fitness(fitness)
        new = update(state, population, fitness, config)
        scored = jnp.where(counted, fitness, jnp.inf)
        best = jnp.argmin(scored)
        improved = scored[best] < state.best_f
        return new._replace(
            best_x=jnp.where(improved, population[best], state.best_x),
            best_f=jnp.where(improved, scored[best], state.best_f).astype(state.best_f.dtype),
            generation=state.generation + 1,
            evaluations=state.evaluations + jnp.sum(counted).astype(jnp.int32),
            nonfinite=state.nonfinite + nonfinite,
        )

    tell.__doc__ = update.__doc__
    return jax.jit(tell, static_argnames="config")


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
