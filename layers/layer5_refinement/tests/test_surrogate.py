"""The Gaussian-process surrogate and its expected-improvement proposals."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from chimera.refinement.surrogate import MAX_MODEL_POINTS, suggest

LOWER, UPPER = np.array([-1.0, -2.0, 0.0]), np.array([1.0, 2.0, 10.0])
OPTIMUM = np.array([0.3, -1.0, 7.0])


def objective(p: np.ndarray) -> np.ndarray:
    """A smooth bowl, maximal (0) at OPTIMUM."""
    scaled = (p - OPTIMUM) / (UPPER - LOWER)
    return -np.sum(scaled**2, axis=-1)


def test_the_loop_closes_in_on_the_optimum_faster_than_random_search() -> None:
    rng = np.random.default_rng(0)
    start = rng.uniform(LOWER, UPPER, (10, 3))
    points = start.copy()
    for step in range(12):
        s = suggest(jax.random.key(step), points, objective(points), LOWER, UPPER, maximize=True)
        assert np.all(s.parameters >= LOWER) and np.all(s.parameters <= UPPER)
        points = np.vstack([points, s.parameters])
    guided = objective(points).max()
    random_best = objective(np.vstack([start, rng.uniform(LOWER, UPPER, (12, 3))])).max()
    assert guided > random_best
    assert guided > -0.005  # within ~7 % of the box of the optimum


def test_minimising_mirrors_maximising_and_the_seed_fixes_the_answer() -> None:
    rng = np.random.default_rng(1)
    points = rng.uniform(LOWER, UPPER, (16, 3))
    up = suggest(jax.random.key(3), points, objective(points), LOWER, UPPER, maximize=True)
    down = suggest(jax.random.key(3), points, -objective(points), LOWER, UPPER, maximize=False)
    np.testing.assert_allclose(up.parameters, down.parameters, rtol=1e-5)
    assert down.predicted_value == pytest.approx(-up.predicted_value, rel=1e-4)
    assert down.best_value == pytest.approx(-up.best_value)
    again = suggest(jax.random.key(3), points, objective(points), LOWER, UPPER, maximize=True)
    np.testing.assert_array_equal(up.parameters, again.parameters)
    assert up.expected_improvement >= 0
    assert up.loo_r_squared > 0.8  # a smooth objective is predictable out of sample


def test_noise_is_not_predictable() -> None:
    rng = np.random.default_rng(2)
    points = rng.uniform(LOWER, UPPER, (16, 3))
    s = suggest(jax.random.key(0), points, rng.normal(size=16), LOWER, UPPER, maximize=True)
    assert s.loo_r_squared < 0.5


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError):
        suggest(jax.random.key(0), np.zeros((1, 3)), np.zeros(1), LOWER, UPPER, maximize=True)
    with pytest.raises(ValueError):
        suggest(jax.random.key(0), np.zeros((4, 3)), np.zeros(4), UPPER, LOWER, maximize=True)


def test_large_requests_fit_the_best_observations_only() -> None:
    rng = np.random.default_rng(3)
    points = rng.uniform(LOWER, UPPER, (100, 3))
    values = objective(points)
    # A cap of 32 (the default is MAX_MODEL_POINTS) reuses the compiled 32-row program.
    assert MAX_MODEL_POINTS >= 256
    s = suggest(jax.random.key(0), points, values, LOWER, UPPER, maximize=True, max_points=32)
    assert s.best_value == pytest.approx(values.max())  # over all observations
    assert objective(s.parameters[None, :])[0] > np.median(values)
