"""Bin-packing instances: validation, the kernel's task-input encoding, generators.

The encoding is ``instance.rs``'s: a little-endian f64 array
``[1.0, capacity, sizes...]`` with whole-number sizes in ``1..=capacity``.

The generators are the project's own (training and generalisation
instances). Their seeds are disjoint by construction: each use draws from its
own :class:`SeedRange`, and :data:`SEED_RANGES` is checked for overlaps at
import. None of them reads the published sets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chimera.wasm.guest import decode_f64s, encode_f64s

__all__ = [
    "FAMILIES",
    "FORMAT_VERSION",
    "Family",
    "Instance",
    "InvalidInstance",
    "MAX_CAPACITY",
    "MAX_ITEMS",
    "SEED_RANGES",
    "SeedRange",
    "excess_pct",
    "generate",
]

FORMAT_VERSION = 1.0
MAX_CAPACITY = 1024
MAX_ITEMS = 100_000


class InvalidInstance(ValueError):
    """An instance breaks a rule; ``field`` names the part (``items[3]``, ``capacity``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Instance:
    """Items (whole sizes, arrival order) to pack into bins of ``capacity``."""

    capacity: int
    items: tuple[int, ...]
    name: str = ""

    def __post_init__(self) -> None:
        validate(self.capacity, self.items)

    @property
    def l1_bound(self) -> int:
        """``ceil(sum(items) / capacity)``."""
        return -(-sum(self.items) // self.capacity)

    def encode(self) -> bytes:
        return encode_f64s([FORMAT_VERSION, float(self.capacity), *map(float, self.items)])

    @classmethod
    def decode(cls, data: bytes, name: str = "") -> Instance:
        values = decode_f64s(data)
        if len(values) < 2 or values[0] != FORMAT_VERSION:
            raise InvalidInstance("input", f"expected [{FORMAT_VERSION}, capacity, items...]")
        capacity = _whole(values[1], "capacity", MAX_CAPACITY)
        items = tuple(_whole(v, f"items[{i}]", capacity) for i, v in enumerate(values[2:]))
        return cls(capacity, items, name)


def validate(capacity: object, items: Sequence[object]) -> None:
    """The kernel's rules (``Instance::new``), raised as :class:`InvalidInstance`."""
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
        raise InvalidInstance("capacity", f"{capacity!r} is not a whole number in 1..={MAX_CAPACITY}")
    if not items:
        raise InvalidInstance("items", "the instance has no items")
    if len(items) > MAX_ITEMS:
        raise InvalidInstance("items", f"{len(items)} items, more than {MAX_ITEMS}")
    for i, size in enumerate(items):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not 1 <= size <= capacity:
            raise InvalidInstance(
                f"items[{i}]", f"size {size!r} is not a whole number in 1..={capacity} (the capacity)"
            )


def _whole(value: float, field: str, maximum: int) -> int:
    if not (math.isfinite(value) and value == int(value) and 1 <= value <= maximum):
        raise InvalidInstance(field, f"{value} is not a whole number in 1..={maximum}")
    return int(value)


def excess_pct(bins: Sequence[int], bounds: Sequence[int]) -> float:
    """The protocol's score: excess of the mean bins over the mean L1 bound, in %."""
    total_bound = sum(bounds)
    return 100.0 * (sum(bins) - total_bound) / total_bound


# --- generators ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A generator of instances like one published set's."""

    name: str
    capacity: int
    items: int
    #: The published set this family imitates (its held-out counterpart).
    published_set: str
    #: Generated training instances a fitness averages over by default: a
    #: 5,000-item Weibull instance is long enough that two generalise; 500-item
    #: OR-like ones need more.
    training_instances: int

    def sizes(self, rng: np.random.Generator, count: int) -> np.ndarray:
        if self.name == "weibull":
            # Shape 3, scale 45, rounded and clipped to [1, 100] (the paper's Weibull sets).
            return np.clip(np.round(45.0 * rng.weibull(3.0, count)), 1, 100).astype(np.int64)
        # OR-like: uniform whole sizes in [20, 100] (Falkenauer's u-class).
        return rng.integers(20, 101, count, dtype=np.int64)


FAMILIES: dict[str, Family] = {
    "weibull": Family("weibull", capacity=100, items=5_000, published_set="weibull_5k", training_instances=2),
    "or": Family("or", capacity=150, items=500, published_set="or3", training_instances=16),
}


@dataclass(frozen=True)
class SeedRange:
    """Seeds ``first .. first + size - 1`` reserved for one use."""

    use: str
    first: int
    size: int

    def seed(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise InvalidInstance("seed", f"index {index} is outside {self.use}'s {self.size} seeds")
        return self.first + index


#: Every use of the generators, with seeds that never overlap.
SEED_RANGES: dict[str, SeedRange] = {
    r.use: r
    for r in (
        SeedRange("training", 0, 100_000),
        SeedRange("baseline_stream", 100_000, 100_000),
        SeedRange("ab_holdout", 1_000_000, 100_000),
        SeedRange("generalisation", 2_000_000, 100_000),
    )
}


def _check_disjoint(ranges: Sequence[SeedRange]) -> None:
    spans = sorted((r.first, r.first + r.size, r.use) for r in ranges)
    for (_, end, use), (start, _, other) in zip(spans, spans[1:]):
        if start < end:
            raise AssertionError(f"seed ranges {use} and {other} overlap")


_check_disjoint(list(SEED_RANGES.values()))


def generate(family: str, use: str, index: int, items: int | None = None) -> Instance:
    """Instance ``index`` of ``use``'s seeds from ``family`` (``items`` overrides the size)."""
    if family not in FAMILIES:
        raise InvalidInstance("family", f"{family!r} is not one of {sorted(FAMILIES)}")
    if use not in SEED_RANGES:
        raise InvalidInstance("use", f"{use!r} is not one of {sorted(SEED_RANGES)}")
    spec = FAMILIES[family]
    count = spec.items if items is None else items
    seed = SEED_RANGES[use].seed(index)
    # The family's name enters the seed so the two families never share a stream.
    rng = np.random.default_rng([seed, list(FAMILIES).index(family)])
    sizes = spec.sizes(rng, count)
    return Instance(spec.capacity, tuple(int(s) for s in sizes), f"{family}/{use}/{index}")
