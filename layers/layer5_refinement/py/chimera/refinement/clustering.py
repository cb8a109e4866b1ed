"""k-means clustering of KPI vectors in JAX.

Pure functions of an explicit PRNG key. Features are standardised per column
(so milliseconds and fuel units weigh alike), the initial centres come from
k-means++ seeding, and Lloyd's iterations run in ``lax.fori_loop`` under
``jit``. The point count is padded to a power of two with zero-weight rows,
and the centres to a power of two of slots of which the first k are used,
so that windows of different sizes and cluster counts reuse a few compiled
shapes.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from chimera.refinement.jitting import jit_small

__all__ = ["ClusterResult", "kmeans"]

#: Smallest padded point count and centre slots: windows up to 128 reports
#: and up to 8 clusters share one compiled program (~0.7 s of CPU to compile).
_MIN_ROWS, _MIN_SLOTS = 128, 8


def _bucket(n: int, smallest: int) -> int:
    return max(smallest, 1 << max(0, (n - 1).bit_length()))


@dataclass(frozen=True)
class ClusterResult:
    """Centres in the original feature units, largest cluster first."""

    centroids: np.ndarray  # (k, d)
    sizes: np.ndarray  # (k,)
    mean_distance: np.ndarray  # (k,) in original units
    labels: np.ndarray  # (n,) index into the sorted centroids


def _sq_distances(points: jax.Array, centres: jax.Array) -> jax.Array:
    return jnp.sum((points[:, None, :] - centres[None, :, :]) ** 2, axis=-1)


def _seed(key: jax.Array, points: jax.Array, weights: jax.Array, k: jax.Array, slots: int) -> jax.Array:
    """k-means++: each next centre drawn with probability ∝ squared distance to the nearest."""
    n, d = points.shape
    first = jax.random.choice(key, n, p=weights / weights.sum())
    centres = jnp.zeros((slots, d), points.dtype).at[0].set(points[first])

    def add(i: jax.Array, state: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        centres, key = state
        key, sub = jax.random.split(key)
        chosen = jnp.arange(slots) < i
        dist = jnp.where(chosen[None, :], _sq_distances(points, centres), jnp.inf).min(axis=1)
        p = dist * weights
        # All remaining points coincide with a centre: fall back to the weights.
        p = jnp.where(p.sum() > 0, p, weights)
        pick = jax.random.choice(sub, n, p=p / p.sum())
        return centres.at[i].set(points[pick]), key

    centres, _ = jax.lax.fori_loop(1, k, add, (centres, key))
    return centres


@jit_small(static_argnames=("slots", "iterations"))
def _lloyd(
    key: jax.Array, points: jax.Array, weights: jax.Array, k: jax.Array, slots: int, iterations: int
) -> tuple[jax.Array, jax.Array]:
    centres = _seed(key, points, weights, k, slots)
    active = jnp.arange(slots) < k

    def assign(centres: jax.Array) -> jax.Array:
        # Unused slots (k < slots) are infinitely far: no point joins them.
        return jnp.argmin(jnp.where(active[None, :], _sq_distances(points, centres), jnp.inf), axis=1)

    def step(_: int, centres: jax.Array) -> jax.Array:
        one_hot = jax.nn.one_hot(assign(centres), slots, dtype=points.dtype) * weights[:, None]
        counts = one_hot.sum(axis=0)
        sums = one_hot.T @ points
        # An empty cluster keeps its centre instead of dividing by zero.
        return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1)[:, None], centres)

    centres = jax.lax.fori_loop(0, iterations, step, centres)
    return centres, assign(centres)


def kmeans(key: jax.Array, features: np.ndarray, k: int, iterations: int = 25) -> ClusterResult:
    """Clusters the rows of ``features`` (n, d) into at most ``min(k, n)`` groups."""
    x = np.asarray(features, dtype=np.float64)
    n, d = x.shape
    if n == 0 or k < 1:
        raise ValueError("kmeans needs at least one point and one cluster")
    k = min(k, n)
    centre, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    padded = _bucket(n, _MIN_ROWS)
    slots = _bucket(k, _MIN_SLOTS)
    z = np.zeros((padded, d), np.float32)
    z[:n] = (x - centre) / scale
    weights = np.zeros(padded, np.float32)
    weights[:n] = 1.0
    centres_z, labels = _lloyd(
        key, jnp.asarray(z), jnp.asarray(weights), jnp.int32(k), slots, iterations
    )
    labels = np.asarray(labels)[:n]
    centroids = np.asarray(centres_z, np.float64)[:k] * scale + centre
    sizes = np.bincount(labels, minlength=k)
    distances = np.linalg.norm(x - centroids[labels], axis=1)
    mean_distance = np.array(
        [distances[labels == j].mean() if sizes[j] else 0.0 for j in range(k)]
    )
    order = np.argsort(-sizes, kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    keep = sizes[order] > 0
    return ClusterResult(
        centroids=centroids[order][keep],
        sizes=sizes[order][keep],
        mean_distance=mean_distance[order][keep],
        labels=rank[labels],
    )
