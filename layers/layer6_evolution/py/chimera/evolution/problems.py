"""A contract ``Problem`` turned into what the engine runs, with the checks
the contract's field rules cannot express (cross-field rules and the limits
that keep one request from occupying the server for minutes)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import numpy as np

from chimera.framework.errors import InvalidArgument
from chimera.optim import objectives
from chimera.optim.space import Space
from chimera.v1 import common_pb2, evolution_pb2

__all__ = ["Limits", "ProblemSpec", "benchmark_objective", "check_bounds", "default_class", "problem_spec"]

#: Benchmark enum -> the engine's test function.
BENCHMARKS: dict[int, str] = {
    evolution_pb2.BENCHMARK_FUNCTION_SPHERE: "sphere",
    evolution_pb2.BENCHMARK_FUNCTION_RASTRIGIN: "rastrigin",
    evolution_pb2.BENCHMARK_FUNCTION_ROSENBROCK: "rosenbrock",
    evolution_pb2.BENCHMARK_FUNCTION_ACKLEY: "ackley",
}

# float32 is the engine's default dtype: bounds beyond this would overflow
# the box width (and every step size derived from it).
BOUND_MAGNITUDE = 1e12


@dataclass(frozen=True)
class Limits:
    """What one server-side request may ask for (INVALID_ARGUMENT beyond).

    dimensions: genes of a run (CMA-ES keeps a d x d covariance);
    evaluations: budget of one run; population: members per generation;
    population_values: members x dimensions of one population (what one
    Population message carries, kept well under gRPC's 4 MiB);
    generations: generations one Evolve runs (its history is one message);
    work: generations x dimensions^2 of one Evolve (CMA-ES's running time
    is about proportional); default_evaluations: Evolve's budget when the
    problem gives 0.
    """

    dimensions: int = 200
    evaluations: int = 1_000_000
    population: int = 4096
    population_values: int = 100_000
    generations: int = 10_000
    work: int = 2_000_000
    default_evaluations: int = 10_000


@dataclass(frozen=True)
class ProblemSpec:
    space: Space
    maximize: bool
    problem_class: str
    budget: int  # 0 = unlimited (ask/tell only)
    benchmark: str | None
    #: (family, training instances, items per instance) of a bin-packing workload, or None.
    binpacking: tuple[str, int, int] | None = None


def check_bounds(bounds, field: str) -> list[tuple[float, float]]:
    """(lower, upper) per dimension; the contract makes each finite."""
    pairs = []
    for i, b in enumerate(bounds):
        if abs(b.lower) > BOUND_MAGNITUDE or abs(b.upper) > BOUND_MAGNITUDE:
            raise InvalidArgument(f"{field}[{i}]", f"bounds must lie within +-{BOUND_MAGNITUDE:g}")
        if not b.lower < b.upper:
            raise InvalidArgument(f"{field}[{i}].upper", "must be greater than lower")
        if not np.float32(b.lower) < np.float32(b.upper):  # the engine's default dtype
            raise InvalidArgument(f"{field}[{i}].upper", "must exceed lower by more than float32 resolution")
        pairs.append((b.lower, b.upper))
    return pairs


def problem_spec(problem: evolution_pb2.Problem, limits: Limits, server_side: bool) -> ProblemSpec:
    """The run's spec; InvalidArgument naming the field for what the engine cannot run."""
    dim = len(problem.dimensions)
    if dim > limits.dimensions:
        raise InvalidArgument("problem.dimensions", f"at most {limits.dimensions} dimensions per run")
    pairs = check_bounds(problem.dimensions, "problem.dimensions")
    benchmark = BENCHMARKS.get(problem.objective.benchmark)
    if problem.objective.benchmark and benchmark is None:
        raise InvalidArgument("problem.objective.benchmark", "is not a known benchmark function")
    if server_side and benchmark is None:
        raise InvalidArgument("problem.objective.benchmark", "is required for a server-side run")
    if benchmark == "rosenbrock" and dim < 2:
        raise InvalidArgument("problem.dimensions", "rosenbrock needs at least 2 dimensions")
    direction = problem.objective.direction
    if direction not in (common_pb2.OPTIMIZATION_DIRECTION_MINIMIZE, common_pb2.OPTIMIZATION_DIRECTION_MAXIMIZE):
        raise InvalidArgument("problem.objective.direction", "must be MINIMIZE or MAXIMIZE")
    budget = problem.evaluation_budget
    if budget > limits.evaluations:
        raise InvalidArgument("problem.evaluation_budget", f"at most {limits.evaluations} evaluations per run")
    if server_side and budget == 0:
        budget = limits.default_evaluations
    space = Space(dim, lower=[lo for lo, _ in pairs], upper=[hi for _, hi in pairs])
    problem_class = problem.problem_class or default_class(benchmark or problem.objective.name, dim)
    maximize = direction == common_pb2.OPTIMIZATION_DIRECTION_MAXIMIZE
    return ProblemSpec(space, maximize, problem_class, budget, benchmark, _binpacking(problem, dim, maximize))


def _binpacking(problem: evolution_pb2.Problem, dim: int, maximize: bool) -> tuple[str, int, int] | None:
    """The bin-packing workload's (family, instances, items); the kernel's genome length and direction."""
    if not problem.HasField("binpacking"):
        return None
    from chimera.binpacking.genome import SEARCH_FIELDS
    from chimera.binpacking.instances import FAMILIES

    workload = problem.binpacking
    if workload.family not in FAMILIES:
        raise InvalidArgument("problem.binpacking.family", f"must be one of {sorted(FAMILIES)}")
    if dim != len(SEARCH_FIELDS):
        raise InvalidArgument(
            "problem.dimensions", f"a bin-packing search genome has {len(SEARCH_FIELDS)} dimensions"
        )
    if maximize:
        raise InvalidArgument("problem.objective.direction", "a bin-packing excess is minimised")
    return workload.family, workload.training_instances, workload.items


def default_class(family: str, dim: int) -> str:
    """``<family>/d<lo>-<hi>``: problems of one objective family whose dimension
    falls in the same power-of-two bucket share the bandit's statistics."""
    high = 1 << max(dim - 1, 0).bit_length()
    low = high // 2 + 1
    return f"{family}/d{high}" if low >= high else f"{family}/d{low}-{high}"


def benchmark_objective(spec: ProblemSpec) -> Callable[[jax.Array], jax.Array]:
    """The batch objective the engine minimises (negated for MAXIMIZE).

    Returns the same function object for the same (benchmark, direction), so
    jit caches compiled runs across requests."""
    assert spec.benchmark is not None
    return _OBJECTIVES[(spec.benchmark, spec.maximize)]


def _negated(fn: Callable[[jax.Array], jax.Array]) -> Callable[[jax.Array], jax.Array]:
    return lambda x: -fn(x)


_OBJECTIVES = {
    (name, maximize): (_negated(objectives.TEST_FUNCTIONS[name].fn) if maximize else objectives.TEST_FUNCTIONS[name].fn)
    for name in BENCHMARKS.values()
    for maximize in (False, True)
}
