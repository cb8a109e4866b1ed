"""Screening with the JAX twin of layer 4's bin-packing kernel.

The twin gives exactly the kernel's bin counts (layer 4's
``binpacking_kernel_test`` holds it to that), so a population screened here
has the fitness layer 4 would measure; what the twin saves is the service
round trip and the sandbox, and on an accelerator the sequential kernel's time.
Training instances come from the shared generators (seeds of the
``training`` range), never from the published sets.
"""

from __future__ import annotations

import functools

import numpy as np

from chimera.binpacking import twin
from chimera.binpacking.instances import Instance, excess_pct, generate

__all__ = ["BinPackingScreen"]

Workload = tuple[str, int, int]  # (family, training instances, items per instance; 0 = the family's)


class BinPackingScreen:
    """Excess over L1 (%) of genomes on a workload's training instances."""

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def instances(workload: Workload) -> tuple[Instance, ...]:
        family, count, items = workload
        return tuple(generate(family, "training", i, items=items or None) for i in range(count))

    def excess_pct(self, workload: Workload, points: np.ndarray) -> np.ndarray:
        """One excess per search genome (no ``first_fit``), over the training instances."""
        instances = self.instances(workload)
        bins = twin.bins_used(points, instances)
        bounds = [inst.l1_bound for inst in instances]
        return np.asarray([excess_pct(row, bounds) for row in bins], np.float64)
