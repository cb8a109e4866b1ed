"""CMA-ES in float64 (x64 enabled in this process only)."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

from cma_checks import evaluations_to_target  # noqa: E402


def test_float64_reaches_1e_8_on_sphere_ellipsoid_rosenbrock_without_nan():
    hits, nan_leaves, state = evaluations_to_target("float64")
    assert nan_leaves == 0
    assert all(h is not None for runs in hits.values() for h in runs), hits
    assert state.best_f.dtype == jnp.float64
