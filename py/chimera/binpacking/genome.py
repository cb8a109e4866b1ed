"""The bin-packing kernel's genome and priority table (Python side).

Mirrors ``layers/layer4_execution/rust/binpacking/src/genome.rs``, which
documents each field. Searches (layers 6 and 7, the twin) work on the
``SEARCH_LEN`` search fields; the kernel takes those as they are. :func:`priority_table` performs the same float64
operations in the same order as ``Genome::priority`` (numpy evaluates each
operation separately, with no fused multiply-add), so the twin and the kernel
compare exactly the same numbers.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BEST_FIT",
    "FIELDS",
    "FIRST_FIT",
    "GENOME_LEN",
    "ITEM_RESIDUAL_KNOTS",
    "MAX_ABS_PARAM",
    "RESIDUAL_KNOTS",
    "SEARCH_FIELDS",
    "SEARCH_LEN",
    "knots",
    "priority_table",
]

RESIDUAL_KNOTS = 12
ITEM_RESIDUAL_KNOTS = 6
MAX_ABS_PARAM = 1.0e6
#: What a search varies: every field but ``first_fit``. The kernel takes these
#: alone (``first_fit`` = 0: the priority depends on (item, room) only) or
#: followed by ``first_fit``, whose only use is the First Fit baseline.
SEARCH_FIELDS: tuple[str, ...] = (
    ("best_fit", "new_bin")
    + tuple(f"residual_{k}" for k in range(RESIDUAL_KNOTS))
    + tuple(f"item_residual_{k}" for k in range(ITEM_RESIDUAL_KNOTS))
)
SEARCH_LEN = len(SEARCH_FIELDS)
FIELDS: tuple[str, ...] = SEARCH_FIELDS + ("first_fit",)
GENOME_LEN = len(FIELDS)
FIRST_FIT: tuple[float, ...] = (0.0,) * SEARCH_LEN + (1.0,)
BEST_FIT: tuple[float, ...] = (1.0,) + (0.0,) * (SEARCH_LEN - 1)
_RESIDUAL = slice(2, 2 + RESIDUAL_KNOTS)
_ITEM_RESIDUAL = slice(2 + RESIDUAL_KNOTS, SEARCH_LEN)


def knots(n: int) -> np.ndarray:
    """Knot ``k`` of ``n`` at ``(k / (n - 1))^2``, as ``genome::knot``."""
    t = np.arange(n, dtype=np.float64) / float(n - 1)
    return t * t


def _piecewise_linear(values: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``genome::piecewise_linear`` for every genome row of ``values`` at every ``u``."""
    n = values.shape[-1]
    at = knots(n)
    k = np.clip(np.searchsorted(at, u, side="right") - 1, 0, n - 2)
    t = (u - at[k]) / (at[k + 1] - at[k])
    low, high = values[:, k], values[:, k + 1]
    return low + (high - low) * t


def priority_table(genomes: np.ndarray, capacity: int) -> np.ndarray:
    """``[G, C + 1, C + 1]`` priorities of (size, room), new-bin bias in column ``C``.

    ``genomes`` are search genomes (``[G, SEARCH_LEN]``): the opening-order
    term is not part of the table. Only ``room >= size >= 1`` is meaningful
    (the rest is ``-inf``).
    """
    genomes = np.asarray(genomes, dtype=np.float64)
    if genomes.ndim != 2 or genomes.shape[1] != SEARCH_LEN:
        raise ValueError(f"genomes: expected shape [G, {SEARCH_LEN}], got {genomes.shape}")
    sizes = np.arange(capacity + 1)[:, None]
    rooms = np.arange(capacity + 1)[None, :]
    valid = (rooms >= sizes) & (sizes >= 1)
    u = np.where(valid, rooms - sizes, 0) / float(capacity)
    x = sizes / float(capacity)
    best_fit = genomes[:, 0][:, None, None]
    table = -best_fit * u
    table = table + _piecewise_linear(genomes[:, _RESIDUAL], u)
    table = table + x * _piecewise_linear(genomes[:, _ITEM_RESIDUAL], u)
    table[:, :, capacity] += genomes[:, 1][:, None]
    return np.where(valid, table, -np.inf)
