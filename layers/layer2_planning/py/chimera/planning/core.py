"""Typed access to the planning Rust core through its WASM module.

The graph algorithms (validation, cycle detection, topological order,
critical path, list scheduling under a parallelism limit, sizing and
per-layer peaks) and risk scoring run in the core
(``layers/layer2_planning/rust``); see its module docs for the exact rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from chimera.planning import artifacts
from chimera.wasm import CoreError, CoreModule, Reader, Writer

__all__ = [
    "STATUS_CYCLE",
    "STATUS_DUPLICATE_ID",
    "STATUS_UNKNOWN_DEPENDENCY",
    "CoreError",
    "CoreTask",
    "PlanningCore",
    "RankedRisk",
    "Requirements",
    "Schedule",
    "TaskTiming",
]

OPERATIONS = ("planning_schedule", "planning_score_risks")
STATUS_DUPLICATE_ID = 2
STATUS_UNKNOWN_DEPENDENCY = 3
STATUS_CYCLE = 4
STATUS_BAD_RISK = 5


@dataclass(frozen=True)
class Requirements:
    """Mirrors ``chimera.v1.ResourceRequirements``."""

    cpu_cores: float = 0.0
    memory_bytes: int = 0
    gpu_count: int = 0
    gpu_memory_bytes: int = 0
    storage_bytes: int = 0


@dataclass(frozen=True)
class CoreTask:
    """A task as the core schedules it."""

    id: str
    duration_ms: int
    priority: int
    layer: int
    requested: Requirements
    deps: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskTiming:
    """Schedule of one task (offsets in ms after the plan starts) and its sizing."""

    start: int
    end: int
    slack: int
    earliest_start: int
    latest_start: int
    level: int
    cpu_cores: float
    memory_bytes: int


@dataclass(frozen=True)
class Schedule:
    """The core's answer for a task list (indices refer to the input list)."""

    parallel_limit: int
    makespan_ms: int
    topo_order: tuple[int, ...]
    timeline_order: tuple[int, ...]
    timings: tuple[TaskTiming, ...]
    critical_path: tuple[int, ...]
    layer_peaks: dict[int, Requirements] = field(default_factory=dict)
    #: Peak over all layers at once (not the sum of the layer peaks).
    overall_peak: Requirements = Requirements()


@dataclass(frozen=True)
class RankedRisk:
    index: int
    score: float
    level: int


class PlanningCore:
    """The compiled planning core; thread-safe (each call gets its own instance)."""

    def __init__(self, module: CoreModule) -> None:
        self._module = module

    @classmethod
    def load(cls, path: Path | None = None) -> PlanningCore:
        wasm = Path(path) if path is not None else artifacts.locate(artifacts.CORE_WASM)
        return cls(CoreModule.from_file(wasm, OPERATIONS))

    def schedule(
        self,
        tasks: Sequence[CoreTask],
        *,
        max_parallel_tasks: int = 0,
        cores: float = 0.0,
        memory_bytes: int = 0,
    ) -> Schedule:
        """Validates, sizes and schedules ``tasks``; CoreError for graph errors."""
        w = Writer().u32(max_parallel_tasks).f64(cores).u64(memory_bytes).u32(len(tasks))
        for t in tasks:
            r = t.requested
            w.string(t.id).u64(t.duration_ms).u32(t.priority).u32(t.layer)
            w.f64(r.cpu_cores).u64(r.memory_bytes).u32(r.gpu_count)
            w.u64(r.gpu_memory_bytes).u64(r.storage_bytes)
            w.strings(t.deps)
        r = Reader(self._module.call("planning_schedule", w.to_bytes()))
        limit, makespan = r.u32(), r.u64()
        topo = tuple(r.u32() for _ in range(r.u32()))
        timeline = tuple(r.u32() for _ in range(r.u32()))
        timings = tuple(
            TaskTiming(r.u64(), r.u64(), r.u64(), r.u64(), r.u64(), r.u32(), r.f64(), r.u64())
            for _ in tasks
        )
        critical = tuple(r.u32() for _ in range(r.u32()))
        peaks = {}
        for _ in range(r.u32()):
            layer = r.u32()
            peaks[layer] = _requirements(r)
        overall = _requirements(r)
        r.finish()
        return Schedule(limit, makespan, topo, timeline, timings, critical, peaks, overall)

    def score_risks(self, risks: Sequence[tuple[float, int]]) -> list[RankedRisk]:
        """``probability x impact`` per risk, highest first; CoreError for out-of-range input."""
        w = Writer().u32(len(risks))
        for probability, impact in risks:
            w.f64(probability).u32(impact)
        r = Reader(self._module.call("planning_score_risks", w.to_bytes()))
        ranked = [RankedRisk(r.u32(), r.f64(), r.u8()) for _ in range(r.u32())]
        r.finish()
        return ranked


def _requirements(r: Reader) -> Requirements:
    return Requirements(r.f64(), r.u64(), r.u32(), r.u64(), r.u64())
