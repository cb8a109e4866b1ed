"""SNES and differential evolution converge on the sphere; DE respects bounds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chimera.optim import de, snes
from chimera.optim.objectives import rastrigin, sphere
from chimera.optim.space import Space


def test_snes_converges_on_sphere():
    state, history = snes.run(jax.random.key(0), snes.SNESConfig(Space(dim=10)), sphere, 300)
    assert float(history.best[-1]) < 1e-8
    assert bool(jnp.all(state.sigma > 0)) and bool(jnp.all(jnp.isfinite(state.mean)))


@pytest.mark.parametrize("variant, target", [("rand1bin", 1e-8), ("current_to_best1bin", 1e-2)])
def test_de_converges_on_sphere(variant, target):
    config = de.DEConfig(Space(dim=10), pop_size=40, variant=variant)
    state, history = de.run(jax.random.key(0), config, sphere, 400)
    assert float(history.best[-1]) < target
    assert np.all(np.diff(np.asarray(history.best)) <= 0)


def test_de_partners_are_distinct_and_bounds_hold():
    r1, r2, r3 = (np.asarray(r) for r in de.distinct_partners(jax.random.key(3), 5))
    i = np.arange(5)
    assert np.all((r1 != i) & (r2 != i) & (r3 != i) & (r1 != r2) & (r1 != r3) & (r2 != r3))
    space = Space(dim=3, lower=-1.0, upper=1.0, bound_mode="reflect")
    config = de.DEConfig(space, pop_size=8, differential_weight=2.0)
    state, _ = de.run(jax.random.key(4), config, rastrigin, 20)
    assert bool(jnp.all(jnp.abs(state.population) <= 1.0))
    with pytest.raises(ValueError, match="pop_size"):
        de.DEConfig(space, pop_size=3)
