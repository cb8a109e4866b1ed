"""Typed access to the genetics Rust core through its WASM module.

The genome checks (bounds finite and increasing; each genome non-empty
population, right length, finite genes within bounds), population diversity
and the default fitness formula run in the core
(``layers/layer7_genetics/rust``); see its module docs for the exact rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chimera.genetics import artifacts
from chimera.wasm import CoreError, CoreModule, Reader, Writer

__all__ = [
    "STATUS_BAD_BOUNDS",
    "STATUS_BAD_GENOME",
    "STATUS_BAD_KPI",
    "STATUS_EMPTY_POPULATION",
    "CoreError",
    "Diversity",
    "GeneticsCore",
    "KpiInputs",
]

OPERATIONS = ("genetics_check_population", "genetics_fitness")
STATUS_BAD_BOUNDS = 2
STATUS_BAD_GENOME = 3
STATUS_EMPTY_POPULATION = 5
STATUS_BAD_KPI = 6


@dataclass(frozen=True)
class KpiInputs:
    """Mirrors ``chimera.v1.FitnessInputs``."""

    accuracy: float
    latency_ms: float
    throughput_per_second: float
    error_rate: float


@dataclass(frozen=True)
class Diversity:
    """Mirrors ``chimera.v1.DiversityStats`` (without the restart count)."""

    mean_pairwise_distance: float
    mean_dimension_stddev: float


class GeneticsCore:
    """The compiled genetics core; thread-safe (each call gets its own instance)."""

    def __init__(self, module: CoreModule) -> None:
        self._module = module

    @classmethod
    def load(cls, path: Path | None = None) -> GeneticsCore:
        wasm = Path(path) if path is not None else artifacts.locate(artifacts.CORE_WASM)
        return cls(CoreModule.from_file(wasm, OPERATIONS))

    def check_population(
        self, bounds: Sequence[tuple[float, float]], population: Sequence[Sequence[float]]
    ) -> Diversity:
        """The population's diversity; CoreError (details as in the core) when
        the bounds or a genome break the rules."""
        w = Writer().u32(len(bounds))
        for lower, upper in bounds:
            w.f64(lower).f64(upper)
        w.u32(len(population))
        for genome in population:
            w.u32(len(genome))
            for gene in genome:
                w.f64(gene)
        r = Reader(self._module.call("genetics_check_population", w.to_bytes()))
        diversity = Diversity(r.f64(), r.f64())
        r.finish()
        return diversity

    def fitness(self, inputs: Sequence[KpiInputs]) -> list[float]:
        """The default fitness of each evaluation; CoreError naming index and field."""
        w = Writer().u32(len(inputs))
        for k in inputs:
            w.f64(k.accuracy).f64(k.latency_ms).f64(k.throughput_per_second).f64(k.error_rate)
        r = Reader(self._module.call("genetics_fitness", w.to_bytes()))
        values = [r.f64() for _ in range(r.u32())]
        r.finish()
        return values
