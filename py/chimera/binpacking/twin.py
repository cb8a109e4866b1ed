"""The JAX twin of the layer-4 bin-packing kernel, for screening populations.

It gives exactly the kernel's bin count (a differential test holds it to
that) for search genomes (``SEARCH_LEN`` values: no opening-order term, which
only the First Fit baseline uses):

- the state is the kernel's ``pack_by_room`` state, open bins counted per
  remaining room (``C + 1`` integers), so one step is a masked argmax over
  ``C + 1`` rooms and two one-hot updates;
- ``lax.scan`` runs over items, ``vmap`` over genomes x instances, and the
  genome rows are split over the devices like the engine's populations
  (:mod:`chimera.optim.sharding`);
- priorities are compared as **ranks**: :func:`rank_tables` ranks each
  (genome, size) row of the float64 table in numpy, so the comparisons the
  device makes in int32 are exactly the kernel's float64 comparisons, with
  the same ties (rank before cast).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from chimera.binpacking.genome import SEARCH_LEN, priority_table
from chimera.binpacking.instances import Instance, InvalidInstance
from chimera.optim.sharding import shard_rows

__all__ = ["bins_used", "pad_items", "rank_tables"]


def rank_tables(genomes: np.ndarray, capacity: int) -> np.ndarray:
    """Dense ranks (int32, 0 = lowest) of each (genome, size) row of the priority table.

    Equal priorities get equal ranks, so the device's first-maximum argmax
    breaks ties by the least room, as the kernel does. Impossible (room <
    size) entries are ``-1``.
    """
    genomes = np.asarray(genomes, dtype=np.float64)
    if genomes.ndim != 2 or genomes.shape[1] != SEARCH_LEN:
        raise InvalidInstance(
            "genomes", f"expected search genomes of shape [G, {SEARCH_LEN}] (no first_fit), got {genomes.shape}"
        )
    table = priority_table(genomes, capacity)
    order = np.argsort(table, axis=-1, kind="stable")
    ordered = np.take_along_axis(table, order, axis=-1)
    step = np.concatenate(
        [np.zeros_like(ordered[..., :1], dtype=bool), ordered[..., 1:] != ordered[..., :-1]], axis=-1
    )
    ranks = np.empty(table.shape, dtype=np.int32)
    np.put_along_axis(ranks, order, np.cumsum(step, axis=-1, dtype=np.int32), axis=-1)
    # -inf entries sort first and share rank 0; lift the rest so -1 marks "impossible".
    return np.where(np.isfinite(table), ranks, -1).astype(np.int32)


def pad_items(instances: Sequence[Instance]) -> np.ndarray:
    """``[I, N]`` item sizes, shorter instances padded with 0 (the scan skips 0)."""
    if not instances:
        raise InvalidInstance("instances", "no instances")
    capacities = {inst.capacity for inst in instances}
    if len(capacities) != 1:
        raise InvalidInstance("instances", f"one capacity per call, got {sorted(capacities)}")
    longest = max(len(inst.items) for inst in instances)
    padded = np.zeros((len(instances), longest), dtype=np.int32)
    for row, inst in enumerate(instances):
        padded[row, : len(inst.items)] = inst.items
    return padded


def _pack(ranks: jax.Array, items: jax.Array) -> jax.Array:
    """Bins one genome (``ranks`` [C+1, C+1]) opens for one instance (``items`` [N])."""
    width = ranks.shape[-1]
    capacity = width - 1
    rooms = jnp.arange(width)

    def place(state, size):
        open_with_room, bins = state
        row = ranks[size]
        # Open bins with room; the new-bin option is always there, at room C.
        usable = (rooms >= size) & ((open_with_room > 0) | (rooms == capacity))
        room = jnp.argmax(jnp.where(usable, row, -2))
        opened = room == capacity
        real = size > 0
        change = (rooms == room - size).astype(jnp.int32) - (
            (rooms == room) & ~opened
        ).astype(jnp.int32)
        open_with_room = open_with_room + jnp.where(real, change, 0)
        return (open_with_room, bins + (opened & real).astype(jnp.int32)), None

    start = (jnp.zeros(width, jnp.int32), jnp.int32(0))
    (_, bins), _ = jax.lax.scan(place, start, items)
    return bins


@jax.jit
def _bins(ranks: jax.Array, items: jax.Array) -> jax.Array:
    per_instance = jax.vmap(_pack, in_axes=(None, 0))
    return jax.vmap(per_instance, in_axes=(0, None))(ranks, items)


def bins_used(genomes: np.ndarray, instances: Sequence[Instance]) -> np.ndarray:
    """``[G, I]`` bins each genome opens on each instance (all of one capacity)."""
    items = pad_items(instances)
    ranks = rank_tables(genomes, instances[0].capacity)
    return np.asarray(_bins(shard_rows(jnp.asarray(ranks)), jnp.asarray(items)))
