"""Optimize: checks the request against its bounds and asks the GP surrogate."""

from __future__ import annotations

import jax
import numpy as np

from chimera.framework import InvalidArgument
from chimera.refinement.surrogate import MODEL_NAME, suggest
from chimera.v1 import common_pb2, refinement_pb2

__all__ = ["optimize"]


def optimize(request: refinement_pb2.OptimizeRequest) -> refinement_pb2.OptimizationResult:
    d = len(request.bounds)
    for i, b in enumerate(request.bounds):
        if not b.upper > b.lower:
            raise InvalidArgument(f"bounds[{i}].upper", f"must exceed lower ({b.lower})")
    for i, obs in enumerate(request.observations):
        if len(obs.parameters) != d:
            raise InvalidArgument(
                f"observations[{i}].parameters", f"must hold {d} values, one per bound"
            )
    lower = np.array([b.lower for b in request.bounds])
    upper = np.array([b.upper for b in request.bounds])
    s = suggest(
        jax.random.key(request.seed),
        np.array([list(o.parameters) for o in request.observations]),
        np.array([o.value for o in request.observations]),
        lower,
        upper,
        maximize=request.direction == common_pb2.OPTIMIZATION_DIRECTION_MAXIMIZE,
    )
    return refinement_pb2.OptimizationResult(
        suggested_parameters=[float(v) for v in s.parameters],
        predicted_value=s.predicted_value,
        expected_improvement=s.expected_improvement,
        best_observed_parameters=[float(v) for v in s.best_parameters],
        best_observed_value=s.best_value,
        model=MODEL_NAME,
        model_r_squared=s.loo_r_squared,
        parameter_names=[b.name for b in request.bounds],
    )
