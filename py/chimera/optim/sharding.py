"""Population layout over all JAX devices: rows of a population on a 1-D mesh.

No device branches: the mesh is whatever `jax.devices()` returns (one CPU,
two forced host devices, eight GPUs); a population whose size does not divide
by the device count is replicated instead of split.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "population"


def population_mesh(devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of the default backend)."""
    return Mesh(np.asarray(devices if devices is not None else jax.devices()), (AXIS,))


def row_sharding(rows: int, mesh: Optional[Mesh] = None) -> NamedSharding:
    """Rows split over the mesh when they divide evenly, else replicated."""
    mesh = mesh if mesh is not None else population_mesh()
    split = rows % mesh.size == 0
    return NamedSharding(mesh, PartitionSpec(AXIS if split else None))


def constrain_rows(population: jax.Array, mesh: Optional[Mesh] = None) -> jax.Array:
    """Inside jit: asks XLA to keep the population's rows split over devices."""
    return jax.lax.with_sharding_constraint(population, row_sharding(population.shape[0], mesh))


def shard_rows(population: jax.Array, mesh: Optional[Mesh] = None) -> jax.Array:
    """Outside jit: places a population's rows on the mesh's devices."""
    return jax.device_put(population, row_sharding(population.shape[0], mesh))
