"""Ask/tell against an objective that runs on the host (numpy, a simulator, COCO).

`loop.run` keeps a whole run inside one XLA program, which needs a JAX
objective. Objectives outside JAX are driven here one generation at a time:
only the counted rows are evaluated (CMA-ES's inactive rows are not), every
evaluation is counted here rather than by the objective, and the fitness goes
to `tell` in its own precision (float64 from numpy, under jax_enable_x64).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from chimera.optim import loop

# rows (k, d) float64 -> fitness (k,) float64; any non-finite value is the worst.
HostObjective = Callable[[np.ndarray], np.ndarray]


class HostRun(NamedTuple):
    """best_f: best fitness evaluated; evaluations: rows evaluated; improvements:
    (evaluations, best-so-far) at each improvement, in order; nonfinite:
    non-finite fitness values returned; state: the strategy's last state."""

    best_f: float
    evaluations: int
    improvements: list[tuple[int, float]]
    nonfinite: int
    state: Any


class Slices:
    """Runs generations of any strategy on one host objective under one shared
    budget, counting every evaluation and recording the best-so-far trace.
    Callable as `portfolio.run_portfolio`'s `advance`."""

    def __init__(self, objective: HostObjective, budget: int, target: Optional[float] = None):
        if budget < 1:
            raise ValueError(f"budget: must be at least 1, got {budget}")
        self.objective, self.budget, self.target = objective, budget, target
        self.evaluations, self.nonfinite, self.best = 0, 0, np.inf
        self.improvements: list[tuple[int, float]] = []

    @property
    def exhausted(self) -> bool:
        """The budget is spent or the target reached."""
        return self.evaluations >= self.budget or (self.target is not None and self.best <= self.target)

    def __call__(self, strategy: loop.Strategy, state: Any, key: jax.Array, config: Any, generations: int) -> Any:
        """Up to `generations` ask/evaluate/tell steps; stops early when exhausted
        (a generation the budget cuts short is evaluated in part, not told)."""
        for ask_key in jax.random.split(key, generations):
            if self.exhausted:
                break
            population, state = strategy.ask(ask_key, state, config)
            rows = np.asarray(population, np.float64)
            counted = (
                np.ones(len(rows), bool)
                if strategy.counted_rows is None
                else np.asarray(strategy.counted_rows(state, config))
            )
            index = np.flatnonzero(counted)[: self.budget - self.evaluations]
            values = np.asarray(self.objective(rows[index]), np.float64).reshape(len(index))
            for k, value in enumerate(values):  # the trace, evaluation by evaluation
                if value < self.best:
                    self.best = float(value)
                    self.improvements.append((self.evaluations + k + 1, self.best))
            self.evaluations += len(index)
            self.nonfinite += int(np.sum(~np.isfinite(values)))
            if len(index) < int(counted.sum()):
                break
            fitness = np.full(len(rows), np.inf)
            fitness[index] = values
            state = strategy.tell(state, population, jnp.asarray(fitness), config)
        return state


def minimize(
    strategy: loop.Strategy,
    key: jax.Array,
    config: Any,
    objective: HostObjective,
    budget: int,
    target: Optional[float] = None,
) -> HostRun:
    """Asks, evaluates and tells until `budget` evaluations are spent (the last
    generation is cut to the budget) or the best fitness is <= `target`."""
    slices = Slices(objective, budget, target)
    init_key, key = jax.random.split(key)
    state = strategy.init(init_key, config)
    while not slices.exhausted:
        key, slice_key = jax.random.split(key)
        state = slices(strategy, state, slice_key, config, 100)
    return HostRun(slices.best, slices.evaluations, slices.improvements, slices.nonfinite, state)
