"""Typed access to the evolution Rust core through its WASM module.

The UCB1 arm choice (pinned to ``chimera.optim.bandit`` by the shared
vectors) and the stagnation / IPOP restart rule run in the core
(``layers/layer6_evolution/rust``); see its module docs for the exact rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chimera.evolution import artifacts
from chimera.wasm import CoreError, CoreModule, Reader, Writer

__all__ = ["DECISIONS", "ArmChoice", "CoreError", "EvolutionCore", "RestartDecision", "RestartPolicy"]

OPERATIONS = ("evolution_choose_arm", "evolution_restart_rule")
DECISIONS = ("continue", "restart", "stop")


@dataclass(frozen=True)
class ArmChoice:
    """The arm UCB1 pulls next: its index, whether that explores (an untried
    arm, or not the arm of highest mean), every arm's index and why."""

    arm: int
    exploration: bool
    indices: tuple[float, ...]
    reason: str


@dataclass(frozen=True)
class RestartPolicy:
    maximize: bool
    tolerance: float
    patience: int
    max_population: int = 0


@dataclass(frozen=True)
class RestartDecision:
    decision: str
    stagnant_generations: int
    best: float
    next_population: int
    reason: str


class EvolutionCore:
    """The compiled evolution core; thread-safe (each call gets its own instance)."""

    def __init__(self, module: CoreModule) -> None:
        self._module = module

    @classmethod
    def load(cls, path: Path | None = None) -> EvolutionCore:
        wasm = Path(path) if path is not None else artifacts.locate(artifacts.CORE_WASM)
        return cls(CoreModule.from_file(wasm, OPERATIONS))

    def choose_arm(self, exploration_constant: float, arms: Sequence[tuple[int, float]]) -> ArmChoice:
        """UCB1 over (pulls, mean reward) per arm; CoreError for no arms or bad values."""
        w = Writer().f64(exploration_constant).u32(len(arms))
        for pulls, mean in arms:
            w.u32(pulls).f64(mean)
        r = Reader(self._module.call("evolution_choose_arm", w.to_bytes()))
        arm = r.u32()
        exploration = bool(r.u8())
        indices = tuple(r.f64() for _ in range(r.u32()))
        reason = r.string()
        r.finish()
        return ArmChoice(arm, exploration, indices, reason)

    def restart_rule(
        self, policy: RestartPolicy, population: int, history: Sequence[float]
    ) -> RestartDecision:
        """Continue, restart (IPOP: a larger population) or stop, from the best
        fitness per generation; CoreError naming the bad policy field."""
        w = Writer().u8(int(policy.maximize)).f64(policy.tolerance).u32(policy.patience)
        w.u32(policy.max_population).u32(population).u32(len(history))
        for value in history:
            w.f64(value)
        r = Reader(self._module.call("evolution_restart_rule", w.to_bytes()))
        decision = RestartDecision(DECISIONS[r.u8()], r.u32(), r.f64(), r.u32(), r.string())
        r.finish()
        return decision
