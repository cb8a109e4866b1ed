"""Typed access to the validation Rust core through its WASM module.

WASM parsing (sections, LEB128), the module policy rules, plan dependency
sanity and SHA-256 run in the core (``layers/layer3_validation/rust``); see
its module docs for the exact rules and rule ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chimera.validation import artifacts
from chimera.validation.policy import ModulePolicy
from chimera.wasm import CoreModule, Reader, Writer

__all__ = ["CoreFinding", "MemoryFacts", "ModuleReport", "ValidationCore"]

OPERATIONS = ("validation_sha256", "validation_vet_module", "validation_check_dependencies")
KINDS = ("func", "table", "memory", "global", "tag")


@dataclass(frozen=True)
class CoreFinding:
    """A finding; family and severity use the proto numbers."""

    rule: str
    family: int
    severity: int
    message: str
    location: str


@dataclass(frozen=True)
class MemoryFacts:
    min_pages: int
    max_pages: int | None
    imported: bool
    shared: bool
    is64: bool


@dataclass(frozen=True)
class ModuleReport:
    sha256: str
    size_bytes: int
    parsed: bool
    imports: tuple[tuple[str, str, str], ...]  # (module, name, kind)
    exports: tuple[tuple[str, str, int], ...]  # (name, kind, index)
    memories: tuple[MemoryFacts, ...]
    findings: tuple[CoreFinding, ...]
    risk_score: float


def _findings(r: Reader) -> tuple[CoreFinding, ...]:
    return tuple(
        CoreFinding(r.string(), r.u8(), r.u8(), r.string(), r.string()) for _ in range(r.u32())
    )


class ValidationCore:
    """The compiled validation core; thread-safe (each call gets its own instance)."""

    def __init__(self, module: CoreModule) -> None:
        self._module = module

    @classmethod
    def load(cls, path: Path | None = None) -> ValidationCore:
        wasm = Path(path) if path is not None else artifacts.locate(artifacts.CORE_WASM)
        return cls(CoreModule.from_file(wasm, OPERATIONS))

    def sha256(self, data: bytes) -> str:
        r = Reader(self._module.call("validation_sha256", data))
        digest = r.string()
        r.finish()
        return digest

    def vet_module(
        self,
        wasm: bytes,
        policy: ModulePolicy,
        *,
        extra_exports: Sequence[str] = (),
        expected_sha256: str = "",
    ) -> ModuleReport:
        required = list(dict.fromkeys([*policy.required_exports, *extra_exports]))
        w = Writer().u64(policy.max_size_bytes).u64(policy.max_memory_pages)
        w.u8(1 if policy.require_memory_max else 0)
        w.strings(policy.allowed_imports).strings(required).string(expected_sha256).raw(wasm)
        r = Reader(self._module.call("validation_vet_module", w.to_bytes()))
        sha, size, parsed = r.string(), r.u64(), r.u8() == 1
        imports = tuple((r.string(), r.string(), KINDS[r.u8()]) for _ in range(r.u32()))
        exports = tuple((r.string(), KINDS[r.u8()], r.u32()) for _ in range(r.u32()))
        memories = []
        for _ in range(r.u32()):
            min_pages, has_max, max_pages = r.u64(), r.u8() == 1, r.u64()
            imported, shared, is64 = r.u8() == 1, r.u8() == 1, r.u8() == 1
            memories.append(
                MemoryFacts(min_pages, max_pages if has_max else None, imported, shared, is64)
            )
        findings = _findings(r)
        score = r.f64()
        r.finish()
        return ModuleReport(sha, size, parsed, imports, exports, tuple(memories), findings, score)

    def check_dependencies(
        self, tasks: Sequence[tuple[str, Sequence[str]]]
    ) -> tuple[CoreFinding, ...]:
        w = Writer().u32(len(tasks))
        for task_id, deps in tasks:
            w.string(task_id).strings(deps)
        r = Reader(self._module.call("validation_check_dependencies", w.to_bytes()))
        findings = _findings(r)
        r.finish()
        return findings
