"""CMA-ES checks shared by the float32 and float64 test modules."""

import jax
import jax.numpy as jnp
import numpy as np

from chimera.optim import cmaes
from chimera.optim.space import Space

TARGET = 1e-8
SEEDS = 4


def evaluations_to_target(objective, dtype: str, generations: int, restarts: str = "ipop"):
    """Runs SEEDS seeds (one vmapped compile); evaluations at first best < TARGET."""
    config = cmaes.CMAConfig(
        Space(dim=10, lower=-1e3, upper=1e3, dtype=dtype), sigma0=2.0, init_region=(-3.0, 3.0), restarts=restarts
    )
    runs = jax.jit(jax.vmap(lambda key: cmaes.run(key, config, objective, generations)))
    state, history = runs(jax.random.split(jax.random.key(0), SEEDS))
    floats = [leaf for leaf in jax.tree_util.tree_leaves(state) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    nan_states = sum(int(jnp.isnan(leaf).any()) for leaf in floats)
    best = np.asarray(history.best)
    evals = np.asarray(history.evaluations)
    hits = [int(evals[i][np.argmax(best[i] < TARGET)]) if (best[i] < TARGET).any() else None for i in range(SEEDS)]
    return state, history, hits, nan_states
