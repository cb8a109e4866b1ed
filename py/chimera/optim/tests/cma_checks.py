"""CMA-ES checks shared by the float32 and float64 test modules.

One compiled program per module: the seeds and the three functions are
vmapped together (the function picked per row with lax.switch), since
compiling dominates these tests' time.
"""

import jax
import jax.numpy as jnp
import numpy as np

from chimera.optim import cmaes
from chimera.optim.objectives import ellipsoid, rosenbrock, sphere
from chimera.optim.space import Space

TARGET = 1e-8
FUNCTIONS = (sphere, ellipsoid, rosenbrock)
BUDGET = 10_000
SEEDS = 2


def evaluations_to_target(dtype: str):
    """{function name: evaluations at the first best < TARGET per seed}, NaN leaf count, states."""
    config = cmaes.CMAConfig(
        Space(dim=10, lower=-1e3, upper=1e3, dtype=dtype), sigma0=2.0, init_region=(-3.0, 3.0), restarts="ipop"
    )

    def one(key, which):
        return cmaes.run(key, config, lambda x: jax.lax.switch(which, FUNCTIONS, x), BUDGET // config.base_popsize)

    which = jnp.repeat(jnp.arange(len(FUNCTIONS)), SEEDS)
    keys = jax.random.split(jax.random.key(0), which.shape[0])
    state, history = jax.jit(jax.vmap(one))(keys, which)
    floats = [leaf for leaf in jax.tree_util.tree_leaves(state) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    nan_leaves = sum(int(jnp.isnan(leaf).any()) for leaf in floats)
    best, evals = np.asarray(history.best), np.asarray(history.evaluations)
    hits = {}
    for row, f in enumerate(np.asarray(which)):
        reached = np.nonzero((best[row] < TARGET) & (evals[row] <= BUDGET))[0]
        hits.setdefault(FUNCTIONS[f].__name__, []).append(int(evals[row][reached[0]]) if reached.size else None)
    return hits, nan_leaves, state
