"""loop.make_tell: every strategy ranks a float64 fitness in float64, even with a
float32 state, and counts non-finite values as the worst (x64 in this process only)."""

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from chimera.optim import cmaes, de, ga, snes  # noqa: E402
from chimera.optim.objectives import sphere  # noqa: E402
from chimera.optim.space import Space  # noqa: E402

SPACE = Space(dim=4, lower=-100.0, upper=100.0, dtype="float32")
STRATEGIES = {
    "cmaes": (cmaes.STRATEGY, cmaes.CMAConfig(SPACE, sigma0=1.0, init_region=(-3.0, 3.0)), ("mean", "cov")),
    "snes": (snes.STRATEGY, snes.SNESConfig(SPACE, sigma0=1.0, init_region=(-3.0, 3.0)), ("mean", "sigma")),
    "de": (de.STRATEGY, de.DEConfig(SPACE, pop_size=8), ("population",)),
    "ga": (ga.STRATEGY, ga.GAConfig(SPACE, pop_size=8), ("population",)),
}


def _shifted(fitness):
    """Within 1e-5 of 1e3: distinct in float64, ties once cast to float32
    (whose spacing is 6e-5 at 1e3); the same order as `fitness`."""
    return 1e3 + 1e-5 * fitness / 1e5


def _second_generation(strategy, config, transform=lambda f: f):
    """State and population of a second ask (DE and the GA return their initial
    population first), the first told `transform(sphere)`."""
    state = strategy.init(jax.random.key(0), config)
    population, state = strategy.ask(jax.random.key(1), state, config)
    state = strategy.tell(state, population, transform(sphere(population.astype(jnp.float64))), config)
    population, state = strategy.ask(jax.random.key(2), state, config)
    return state, population


def _counted_min(strategy, state, config, fitness) -> float:
    counted = np.ones(len(fitness), bool) if strategy.counted_rows is None else strategy.counted_rows(state, config)
    return float(jnp.min(jnp.where(counted, fitness, jnp.inf)))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_float32_state_ranks_in_the_fitness_precision(name):
    strategy, config, fields = STRATEGIES[name]
    state, population = _second_generation(strategy, config)
    fitness = sphere(population.astype(jnp.float64))
    shifted = _shifted(fitness)
    assert len(np.unique(np.asarray(shifted, np.float32))) < len(np.unique(np.asarray(shifted)))
    reference = strategy.tell(state, population, fitness, config)
    shifted_state, shifted_population = _second_generation(strategy, config, _shifted)
    np.testing.assert_array_equal(np.asarray(shifted_population), np.asarray(population))
    told = strategy.tell(shifted_state, population, shifted, config)
    for field in fields:
        np.testing.assert_array_equal(np.asarray(getattr(told, field)), np.asarray(getattr(reference, field)))
    assert told.best_f.dtype == jnp.float64
    assert float(told.best_f) == min(float(shifted_state.best_f), _counted_min(strategy, shifted_state, config, shifted))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_non_finite_fitness_is_worst_and_counted(name):
    strategy, config, _ = STRATEGIES[name]
    state, population = _second_generation(strategy, config)
    fitness = sphere(population.astype(jnp.float64)).at[0].set(jnp.nan).at[1].set(-jnp.inf)
    told = strategy.tell(state, population, fitness, config)
    assert int(told.nonfinite) == int(state.nonfinite) + 2
    assert float(told.best_f) == min(float(state.best_f), _counted_min(strategy, state, config, fitness.at[:2].set(jnp.inf)))
    assert int(told.evaluations) == int(state.evaluations) + population.shape[0] - (
        config.max_popsize - config.base_popsize if name == "cmaes" else 0
    )
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(told) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    assert not any(bool(jnp.isnan(leaf).any()) for leaf in leaves)
    with pytest.raises(ValueError, match="population/fitness"):
        strategy.tell(state, population[:2], fitness[:2], config)
