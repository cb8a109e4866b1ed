"""Typed access to the resources Rust core through its WASM module.

The allocation solver (best fit of requests onto nodes and their devices,
refusals naming one resource) and the cost computation (rate x units x
hours, split by resource kind) run in the core
(``layers/layer8_resources/rust``); see its module docs for the exact rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from chimera.resources import artifacts
from chimera.wasm import CoreError, CoreModule, Reader, Writer

__all__ = [
    "DIMENSIONS",
    "Amounts",
    "CoreError",
    "Cost",
    "Mode",
    "Outcome",
    "Rates",
    "ResourcesCore",
    "SolverDevice",
    "SolverNode",
]

OPERATIONS = ("resources_price", "resources_solve")
STATUS_BAD_VALUE = 2
#: ``ResourceRequirements`` fields in the order the core numbers them.
DIMENSIONS = ("cpu_cores", "memory_bytes", "gpu_count", "gpu_memory_bytes", "storage_bytes")


@dataclass(frozen=True)
class Amounts:
    """Mirrors ``chimera.v1.ResourceRequirements``."""

    cpu_cores: float = 0.0
    memory_bytes: int = 0
    gpu_count: int = 0
    gpu_memory_bytes: int = 0
    storage_bytes: int = 0

    def get(self, dimension: str) -> float:
        return float(getattr(self, dimension))


@dataclass(frozen=True)
class Rates:
    """Mirrors ``chimera.v1.CostRates`` (US dollars per unit and hour)."""

    usd_per_cpu_core_hour: float = 0.0
    usd_per_memory_gib_hour: float = 0.0
    usd_per_gpu_hour: float = 0.0
    usd_per_gpu_memory_gib_hour: float = 0.0
    usd_per_storage_gib_hour: float = 0.0


@dataclass(frozen=True)
class Cost:
    """Per-hour shares (cpu, memory, gpu, gpu memory, storage), their sum and the total."""

    shares: tuple[float, float, float, float, float]
    per_hour: float
    total: float
    duration_minutes: int


@dataclass(frozen=True)
class SolverDevice:
    memory_bytes: int
    free: bool


@dataclass(frozen=True)
class SolverNode:
    """A node as the solver sees it (``gpu_*`` of the amounts unused: devices carry them)."""

    capacity: Amounts
    free: Amounts
    devices: tuple[SolverDevice, ...] = ()


class Mode(Enum):
    PLACE_ALL_THAT_FIT = 0
    STOP_AT_FIRST_MISS = 1


@dataclass(frozen=True)
class Outcome:
    """One request's fate: ``placed``, ``no_room`` (now), ``too_large`` (ever) or ``skipped``."""

    kind: str
    node: int = -1
    devices: tuple[int, ...] = field(default=())
    dimension: str = ""
    requested: float = 0.0
    available: float = 0.0

    @property
    def placed(self) -> bool:
        return self.kind == "placed"


_KINDS = ("placed", "no_room", "too_large", "skipped")


class ResourcesCore:
    """The compiled resources core; thread-safe (each call gets its own instance)."""

    def __init__(self, module: CoreModule) -> None:
        self._module = module

    @classmethod
    def load(cls, path: Path | None = None) -> ResourcesCore:
        wasm = Path(path) if path is not None else artifacts.locate(artifacts.CORE_WASM)
        return cls(CoreModule.from_file(wasm, OPERATIONS))

    def price(self, rates: Rates, items: Sequence[tuple[Amounts, int]]) -> list[Cost]:
        """Cost of each ``(amounts, duration_minutes)``; CoreError names a bad rate or amount."""
        w = Writer()
        for value in (
            rates.usd_per_cpu_core_hour,
            rates.usd_per_memory_gib_hour,
            rates.usd_per_gpu_hour,
            rates.usd_per_gpu_memory_gib_hour,
            rates.usd_per_storage_gib_hour,
        ):
            w.f64(value)
        w.u32(len(items))
        for amounts, minutes in items:
            _write_amounts(w, amounts)
            w.u32(minutes)
        r = Reader(self._module.call("resources_price", w.to_bytes()))
        if r.u32() != len(items):
            raise RuntimeError("resources_price answered for a different number of items")
        costs = []
        for _, minutes in items:
            shares = (r.f64(), r.f64(), r.f64(), r.f64(), r.f64())
            costs.append(Cost(shares, r.f64(), r.f64(), minutes))
        r.finish()
        return costs

    def solve(
        self, nodes: Sequence[SolverNode], requests: Sequence[Amounts], mode: Mode
    ) -> list[Outcome]:
        """Places ``requests`` in order onto ``nodes``; one outcome per request."""
        w = Writer().u8(mode.value).u32(len(nodes))
        for node in nodes:
            for a in (node.capacity, node.free):
                w.f64(a.cpu_cores).u64(a.memory_bytes).u64(a.storage_bytes)
            w.u32(len(node.devices))
            for d in node.devices:
                w.u64(d.memory_bytes).u8(1 if d.free else 0)
        w.u32(len(requests))
        for amounts in requests:
            _write_amounts(w, amounts)
        r = Reader(self._module.call("resources_solve", w.to_bytes()))
        outcomes = [_read_outcome(r) for _ in range(r.u32())]
        r.finish()
        return outcomes


def _write_amounts(w: Writer, a: Amounts) -> None:
    w.f64(a.cpu_cores).u64(a.memory_bytes).u32(a.gpu_count)
    w.u64(a.gpu_memory_bytes).u64(a.storage_bytes)


def _read_outcome(r: Reader) -> Outcome:
    kind = _KINDS[r.u8()]
    if kind == "placed":
        node = r.u32()
        return Outcome(kind, node=node, devices=tuple(r.u32() for _ in range(r.u32())))
    if kind == "skipped":
        return Outcome(kind)
    return Outcome(kind, dimension=DIMENSIONS[r.u8()], requested=r.f64(), available=r.f64())
