"""COCO's BBOB suite for the benchmark and its tests: problems with their
f_opt, and the recorder every solver evaluates through (it counts every
evaluation itself: cocoex does not count NaN ones)."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from chimera.optim import cmaes
from chimera.optim.space import Space

FUNCTIONS = tuple(range(1, 25))
DIMENSIONS = (2, 3, 5, 10, 20, 40)  # the suite's dimensions
# COCO's five BBOB function classes: the portfolio's bandit memory is per class.
CLASSES = {
    "separable": (1, 2, 3, 4, 5),
    "low-moderate-conditioning": (6, 7, 8, 9),
    "high-conditioning-unimodal": (10, 11, 12, 13, 14),
    "multimodal-adequate-structure": (15, 16, 17, 18, 19),
    "multimodal-weak-structure": (20, 21, 22, 23, 24),
}
TARGET_EXPONENTS = tuple(np.round(np.linspace(2, -8, 51), 1))
FINAL_PRECISION = 1e-8
INIT_LOW, INIT_HIGH, SIGMA0 = -4.0, 4.0, 2.0  # COCO's usual start: uniform in [-4, 4]^d, step 2
MAX_BUDGET_MULTIPLIER = 10_000
# COCO instance ids the benchmark accepts. cocoex's default "bbob" suite has
# only 15 instance *indices* (ids 1-5 and 71-80); the suite option
# "instances: N" selects instance id N itself, so an id here is COCO's id.
MAX_INSTANCE = 1_000


class Problem(NamedTuple):
    function: int
    instance: int
    dim: int
    f_opt: float
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    evaluate: Callable[[np.ndarray], float]


class Outcome(NamedTuple):
    evaluations: int
    improvements: list[tuple[int, float]]  # (evaluations, best f - f_opt)
    nonfinite: int
    wall_s: float

    @property
    def solved(self) -> bool:
        return bool(self.improvements) and self.improvements[-1][1] <= FINAL_PRECISION


class Stop(Exception):
    """The recorder's budget is spent or the final target reached."""


class Recorder:
    """The objective every solver calls: counts each evaluation (NaN ones too)
    and records best-so-far improvements; raises Stop at the budget or the
    final target (for the reference solvers, which have their own loops)."""

    def __init__(self, problem: Problem, budget: int):
        self.problem, self.budget = problem, budget
        self.evaluations, self.nonfinite, self.best = 0, 0, math.inf
        self.improvements: list[tuple[int, float]] = []

    def done(self) -> bool:
        return self.evaluations >= self.budget or self.best <= FINAL_PRECISION

    def one(self, x) -> float:
        if self.done():
            raise Stop
        value = float(self.problem.evaluate(np.asarray(x, np.float64)))
        self.evaluations += 1
        if not math.isfinite(value):
            self.nonfinite += 1
            return math.inf
        error = value - self.problem.f_opt
        if error < self.best:
            self.best = error
            self.improvements.append((self.evaluations, error))
        return value

    def rows(self, rows: np.ndarray) -> np.ndarray:
        return np.array([self.one(x) for x in rows])


def load_problem(function: int, dim: int, instance: int) -> Problem:
    """One BBOB problem (`instance` is COCO's instance id) and its f_opt (from
    cocoex's x_opt, evaluated on a second copy of the problem so the measured
    one is untouched)."""
    import cocoex

    def fetch():
        return next(iter(cocoex.Suite("bbob", f"instances: {instance}", f"function_indices:{function} dimensions:{dim}")))

    problem, reference = fetch(), fetch()
    if problem.id_instance != instance:  # the records name the instance: it must be the one evaluated
        raise ValueError(f"instance: cocoex gave instance {problem.id_instance} for {instance}")
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:  # cocoex writes x_opt to a file in the cwd
        os.chdir(scratch)
        try:
            reference._best_parameter("print")
            x_opt = np.loadtxt("._bbob_problem_best_parameter.txt", ndmin=1)
        finally:
            os.chdir(here)
    return Problem(
        function, instance, dim, float(reference(x_opt)),
        tuple(problem.lower_bounds), tuple(problem.upper_bounds), problem,
    )


def seed_of(problem: Problem, solver: str) -> int:
    return (problem.function * 1_000 + problem.instance * 10 + problem.dim) * 100 + sum(map(ord, solver)) % 97


def space(problem: Problem, dtype: str) -> Space:
    """The suite's box ([-5, 5]^d) in `dtype`."""
    return Space(problem.dim, problem.lower, problem.upper, dtype=dtype)


def engine_config(problem: Problem, dtype: str, restarts: str) -> cmaes.CMAConfig:
    """The engine's CMA-ES as the benchmark runs it: COCO's usual start."""
    return cmaes.CMAConfig(space(problem, dtype), sigma0=SIGMA0, init_region=(INIT_LOW, INIT_HIGH), restarts=restarts)
