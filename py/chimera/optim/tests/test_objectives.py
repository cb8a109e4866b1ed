"""Test functions at their optima, host-callback objective, agent fitness, progress."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chimera.optim import ga
from chimera.optim.objectives import TEST_FUNCTIONS, agent_fitness, cos_2pi, host_objective, rastrigin
from chimera.optim.progress import ProgressReporter
from chimera.optim.space import Space, diversity

OPTIMA = {"sphere": 0.0, "ellipsoid": 0.0, "rosenbrock": 1.0, "rastrigin": 0.0, "ackley": 0.0, "schwefel": 420.9687}


@pytest.mark.parametrize("name", sorted(TEST_FUNCTIONS))
def test_known_optimum(name):
    fn = TEST_FUNCTIONS[name].fn
    x = jnp.full((2, 6), OPTIMA[name])
    np.testing.assert_allclose(np.asarray(fn(x)), 0.0, atol=1e-3)
    assert float(fn(x + 0.5)[0]) > 1e-3


def test_cos_2pi_matches_float64_cosine():
    # Wall points of the quarter-wave folding, Rastrigin's and Ackley's domains.
    x = np.concatenate([np.linspace(-40.0, 40.0, 100_001), [0.0, 0.25, -0.25, 0.5, 0.75, 5.12, -32.768]])
    x32 = x.astype(np.float32)
    exact = np.cos(2.0 * np.pi * x32.astype(np.float64))
    assert np.max(np.abs(np.asarray(cos_2pi(jnp.asarray(x32))) - exact)) < 5e-7
    # The rounded angle 2 pi x costs jnp.cos two orders of magnitude more.
    assert np.max(np.abs(np.asarray(jnp.cos(2.0 * jnp.pi * jnp.asarray(x32))) - exact)) > 1e-6


def test_diversity_is_rms_pairwise_distance():
    x = jax.random.normal(jax.random.key(0), (7, 3))
    pairwise = np.linalg.norm(np.asarray(x)[:, None] - np.asarray(x)[None], axis=-1)
    assert float(diversity(x)) == pytest.approx(float(np.sqrt(np.mean(pairwise**2))), rel=1e-5)


def test_diversity_of_some_rows_ignores_the_others():
    x = jax.random.normal(jax.random.key(1), (9, 3))
    rows = jnp.arange(9) < 5
    assert float(diversity(x, rows)) == pytest.approx(float(diversity(x[:5])), rel=1e-5)


def test_host_objective_sees_whole_populations_and_reports_progress():
    calls = []

    def numpy_rastrigin(population):
        calls.append(population.shape)
        return 10 * population.shape[1] + np.sum(population**2 - 10 * np.cos(2 * np.pi * population), axis=1)

    config = ga.GAConfig(Space(dim=4, lower=-5.12, upper=5.12), pop_size=16)
    reporter = ProgressReporter("test")
    state, history = ga.run(jax.random.key(0), config, host_objective(numpy_rastrigin), 20, reporter, 5)
    assert calls == [(16, 4)] * 20
    assert float(state.best_f) == pytest.approx(float(rastrigin(state.best_x)), rel=1e-4)
    assert [r.generation for r in reporter.records] == [5, 10, 15, 20]
    assert reporter.records[-1].evaluations == 320
    assert reporter.records[-1].best == pytest.approx(float(history.best[-1]))


def test_agent_fitness_is_the_design_formula():
    value = agent_fitness(accuracy=0.9, latency_ms=50.0, throughput=500.0, error_rate=0.02)
    assert value == pytest.approx(0.4 * 0.9 + 0.3 / 1.5 + 0.2 * 0.5 + 0.1 * 0.98)
    assert agent_fitness(1.0, 0.0, 5000.0, 0.0) == pytest.approx(1.0)
    batch = agent_fitness(jnp.array([0.5, 1.0]), jnp.array([100.0, 0.0]), jnp.array([0.0, 1000.0]), jnp.array([1.0, 0.0]))
    np.testing.assert_allclose(np.asarray(batch), [0.35, 1.0], rtol=1e-6)
