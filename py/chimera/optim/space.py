"""Search space shared by every strategy: box bounds, integer genes, dtype.

A `Space` is a frozen (hashable) dataclass so it can be part of a static
strategy config under `jit`; its arrays are rebuilt inside traced code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, Optional, Union

import jax
import jax.numpy as jnp

Scalars = Union[float, Sequence[float]]
BoundMode = Literal["clip", "reflect"]
DTYPES = ("float32", "float64")


def _as_tuple(value: Scalars, dim: int, name: str) -> tuple[float, ...]:
    if isinstance(value, (int, float)):
        return (float(value),) * dim
    values = tuple(float(v) for v in value)
    if len(values) != dim:
        raise ValueError(f"{name}: expected {dim} values, got {len(values)}")
    return values


@dataclasses.dataclass(frozen=True)
class Space:
    """A box in R^dim; `integer[i]` marks gene i as integer-valued.

    Attributes:
      dim: number of genes.
      lower, upper: per-gene bounds (a float broadcasts to every gene).
      integer: per-gene flags (a bool broadcasts); integer genes are rounded
        after every variation step, so they stay integral.
      bound_mode: "clip" (project onto the box) or "reflect" (mirror at the
        walls, which keeps the distribution's spread near the bounds).
      dtype: "float32" or "float64" ("float64" needs jax_enable_x64).
    """

    dim: int
    lower: Scalars = -5.0
    upper: Scalars = 5.0
    integer: Union[bool, Sequence[bool]] = False
    bound_mode: BoundMode = "clip"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"dim: must be a positive integer, got {self.dim!r}")
        lower = _as_tuple(self.lower, self.dim, "lower")
        upper = _as_tuple(self.upper, self.dim, "upper")
        if any(not (lo < hi) for lo, hi in zip(lower, upper)):
            raise ValueError("lower/upper: every lower bound must be below its upper bound")
        if any(not jnp.isfinite(v) for v in lower + upper):
            raise ValueError("lower/upper: bounds must be finite")
        integer = (
            (bool(self.integer),) * self.dim
            if isinstance(self.integer, bool)
            else tuple(bool(v) for v in self.integer)
        )
        if len(integer) != self.dim:
            raise ValueError(f"integer: expected {self.dim} flags, got {len(integer)}")
        if self.bound_mode not in ("clip", "reflect"):
            raise ValueError(f"bound_mode: must be 'clip' or 'reflect', got {self.bound_mode!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype: must be one of {DTYPES}, got {self.dtype!r}")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "integer", integer)

    @property
    def jdtype(self) -> jnp.dtype:
        return jnp.dtype(self.dtype)

    def bounds(self) -> tuple[jax.Array, jax.Array]:
        return (
            jnp.asarray(self.lower, self.jdtype),
            jnp.asarray(self.upper, self.jdtype),
        )

    def integer_mask(self) -> jax.Array:
        return jnp.asarray(self.integer, bool)

    def uniform(self, key: jax.Array, n: int) -> jax.Array:
        """n points uniform in the box (integer genes rounded)."""
        lower, upper = self.bounds()
        x = jax.random.uniform(key, (n, self.dim), self.jdtype, lower, upper)
        return self.repair(x)

    def repair(self, x: jax.Array) -> jax.Array:
        """Brings x back into the box (clip or reflect), then rounds integer genes."""
        lower, upper = self.bounds()
        if self.bound_mode == "reflect":
            width = upper - lower
            folded = jnp.mod(x - lower, 2 * width)
            x = lower + jnp.where(folded > width, 2 * width - folded, folded)
        x = jnp.clip(x, lower, upper)
        mask = self.integer_mask()
        if any(self.integer):
            # Rounding can leave the box only if a bound is fractional: clip again.
            x = jnp.where(mask, jnp.clip(jnp.round(x), jnp.ceil(lower), jnp.floor(upper)), x)
        return x


def diversity(population: jax.Array, rows: Optional[jax.Array] = None) -> jax.Array:
    """Root-mean-square pairwise distance, in O(n d) instead of O(n^2 d).

    mean_{i,j} ||x_i - x_j||^2 = 2 mean_i ||x_i - centroid||^2 (all ordered
    pairs), so the exact RMS pairwise distance comes from the centroid.
    rows: optional bool[n], the members to measure (default: all).
    """
    if rows is None:
        centred = population - jnp.mean(population, axis=0)
        return jnp.sqrt(2.0 * jnp.mean(jnp.sum(centred * centred, axis=1)))
    weight = rows.astype(population.dtype)
    count = jnp.maximum(jnp.sum(weight), 1.0)
    centroid = jnp.sum(weight[:, None] * population, axis=0) / count
    centred = population - centroid
    return jnp.sqrt(2.0 * jnp.sum(weight * jnp.sum(centred * centred, axis=1)) / count)
