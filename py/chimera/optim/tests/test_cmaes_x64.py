"""CMA-ES in float64 (x64 enabled in this process only)."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import pytest  # noqa: E402

from chimera.optim.objectives import ellipsoid, rosenbrock, sphere  # noqa: E402
from cma_checks import evaluations_to_target  # noqa: E402


@pytest.mark.parametrize("objective, budget", [(sphere, 2500), (ellipsoid, 9000), (rosenbrock, 12000)])
def test_float64_reaches_1e_8_without_nan(objective, budget):
    state, _, hits, nan_states = evaluations_to_target(objective, "float64", generations=budget // 10)
    assert nan_states == 0
    assert all(h is not None and h <= budget for h in hits), hits
    assert state.best_f.dtype == jnp.float64
