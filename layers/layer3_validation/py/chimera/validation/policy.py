"""The validation policy: a JSON file users edit (``layers/layer3_validation/policy.json``).

Sections and keys (limits of 0 mean "no limit"):

* ``plan``: ``forbidden_operations`` (task operations refused, compared
  case-insensitively), ``max_tasks``, ``max_task_cpu_cores``,
  ``max_task_memory_bytes``, ``max_task_gpu_count`` (per task),
  ``max_layer_cpu_cores``, ``max_layer_memory_bytes`` (per layer's peak in
  ``resource_allocations``), ``max_total_duration_ms`` (the makespan),
  ``warn_risk_score`` and ``max_risk_score`` (plan risk scores at or above
  them are a warning / make the plan invalid);
* ``module``: ``allowed_imports`` (``module.name`` or ``module.*``),
  ``max_memory_pages`` (64 KiB pages), ``require_memory_max``,
  ``max_size_bytes``, ``required_exports``;
* ``verdicts``: ``retention`` (verdicts kept) and ``ttl_seconds`` (after
  which GetVerdict answers NOT_FOUND).

The file is checked at start-up; a mistake fails with the key at fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chimera.validation import artifacts

__all__ = ["ModulePolicy", "PlanPolicy", "Policy", "VerdictPolicy"]


@dataclass(frozen=True)
class PlanPolicy:
    forbidden_operations: frozenset[str] = frozenset()
    max_tasks: int = 0
    max_task_cpu_cores: float = 0.0
    max_task_memory_bytes: int = 0
    max_task_gpu_count: int = 0
    max_layer_cpu_cores: float = 0.0
    max_layer_memory_bytes: int = 0
    max_total_duration_ms: int = 0
    warn_risk_score: float = 2.5
    max_risk_score: float = 4.5


@dataclass(frozen=True)
class ModulePolicy:
    allowed_imports: tuple[str, ...] = ()
    max_memory_pages: int = 0
    require_memory_max: bool = False
    max_size_bytes: int = 0
    required_exports: tuple[str, ...] = ()


@dataclass(frozen=True)
class VerdictPolicy:
    retention: int = 10000
    ttl_seconds: float = 86400.0


@dataclass(frozen=True)
class Policy:
    plan: PlanPolicy = PlanPolicy()
    module: ModulePolicy = ModulePolicy()
    verdicts: VerdictPolicy = VerdictPolicy()

    @classmethod
    def load(cls, path: Path | None = None) -> Policy:
        data, source = artifacts.load_json(path, artifacts.POLICY)
        return cls.from_mapping(data, str(source))

    @classmethod
    def from_mapping(cls, data: Any, where: str = "policy") -> Policy:
        section = _Section(data, where, {"plan", "module", "verdicts"})
        p = _Section(
            section.get("plan", {}), f"{where}: plan", set(PlanPolicy.__dataclass_fields__)
        )
        m = _Section(
            section.get("module", {}), f"{where}: module", set(ModulePolicy.__dataclass_fields__)
        )
        v = _Section(
            section.get("verdicts", {}),
            f"{where}: verdicts",
            set(VerdictPolicy.__dataclass_fields__),
        )
        plan = PlanPolicy(
            forbidden_operations=frozenset(s.lower() for s in p.strings("forbidden_operations")),
            max_tasks=p.integer("max_tasks", 0),
            max_task_cpu_cores=p.number("max_task_cpu_cores", 0.0),
            max_task_memory_bytes=p.integer("max_task_memory_bytes", 0),
            max_task_gpu_count=p.integer("max_task_gpu_count", 0),
            max_layer_cpu_cores=p.number("max_layer_cpu_cores", 0.0),
            max_layer_memory_bytes=p.integer("max_layer_memory_bytes", 0),
            max_total_duration_ms=p.integer("max_total_duration_ms", 0),
            warn_risk_score=p.number("warn_risk_score", 2.5, high=5.0),
            max_risk_score=p.number("max_risk_score", 4.5, high=5.0),
        )
        if plan.warn_risk_score > plan.max_risk_score:
            raise ValueError(f"{where}: plan: warn_risk_score must not exceed max_risk_score")
        module = ModulePolicy(
            allowed_imports=m.strings("allowed_imports"),
            max_memory_pages=m.integer("max_memory_pages", 0),
            require_memory_max=m.boolean("require_memory_max", False),
            max_size_bytes=m.integer("max_size_bytes", 0),
            required_exports=m.strings("required_exports"),
        )
        for i, entry in enumerate(module.allowed_imports):
            if "." not in entry or entry.startswith("."):
                raise ValueError(
                    f"{where}: module: allowed_imports[{i}] must be 'module.name' or 'module.*'"
                )
        retention = v.integer("retention", 10000)
        if retention < 1:
            raise ValueError(f"{where}: verdicts: retention must be at least 1")
        verdicts = VerdictPolicy(retention, v.number("ttl_seconds", 86400.0))
        if verdicts.ttl_seconds <= 0:
            raise ValueError(f"{where}: verdicts: ttl_seconds must be > 0")
        return cls(plan, module, verdicts)


class _Section:
    def __init__(self, data: Any, where: str, keys: set[str]) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: must be a JSON object")
        unknown = sorted(set(data) - keys)
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}")
        self.data, self.where = data, where

    def get(self, key: str, default: Any) -> Any:
        return self.data.get(key, default)

    def integer(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{self.where}: {key} must be a non-negative integer (got {value!r})")
        return value

    def number(self, key: str, default: float, high: float = math.inf) -> float:
        value = self.data.get(key, default)
        ok = not isinstance(value, bool) and isinstance(value, (int, float))
        if not ok or not math.isfinite(value) or not 0 <= value <= high:
            raise ValueError(
                f"{self.where}: {key} must be a number in [0, {high:g}] (got {value!r})"
            )
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise ValueError(f"{self.where}: {key} must be true or false (got {value!r})")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
            raise ValueError(f"{self.where}: {key} must be a list of non-empty strings")
        return tuple(value)
