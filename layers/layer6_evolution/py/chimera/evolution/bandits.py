"""The bandit's memory: one ``chimera.optim.bandit.BanditState`` per problem
class over the portfolio's arms, chosen by the Rust core's UCB1, serialisable
(and persisted to a JSON file when the server is given one)."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from chimera.evolution.core import ArmChoice, EvolutionCore
from chimera.optim import bandit

__all__ = ["BanditBook", "Choice"]


@dataclass(frozen=True)
class Choice:
    arm: str
    exploration: bool
    reason: str
    scores: tuple[float, ...]
    state: bandit.BanditState  # the class's statistics at decision time


class BanditBook:
    """Bandit state per problem class; thread-safe."""

    def __init__(self, core: EvolutionCore, arms: tuple[str, ...], state_file: Path | None = None) -> None:
        self._core = core
        self._arms = arms
        self._state_file = state_file
        self._lock = threading.Lock()
        self._classes: dict[str, bandit.BanditState] = {}
        if state_file is not None and state_file.exists():
            self._classes = self.from_json(state_file.read_text())

    def from_json(self, text: str) -> dict[str, bandit.BanditState]:
        """Classes of a saved book; a file naming other arms is refused (ValueError)."""
        try:
            classes = {name: bandit.BanditState.from_json(json.dumps(s)) for name, s in json.loads(text).items()}
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a saved bandit state ({error})") from None
        for name, state in classes.items():
            if state.arms != self._arms:
                raise ValueError(f"bandit state of class {name!r} names arms {state.arms}, not {self._arms}")
        return classes

    def to_json(self) -> str:
        with self._lock:
            return json.dumps({name: json.loads(s.to_json()) for name, s in sorted(self._classes.items())})

    def state(self, problem_class: str) -> bandit.BanditState:
        with self._lock:
            return self._classes.get(problem_class) or bandit.new_bandit(self._arms)

    def choose(self, problem_class: str) -> Choice:
        state = self.state(problem_class)
        picked: ArmChoice = self._core.choose_arm(
            state.exploration, [(n, state.mean(a)) for a, n in zip(state.arms, state.pulls)]
        )
        arm = state.arms[picked.arm]
        return Choice(arm, picked.exploration, f"{arm}: {picked.reason}", picked.indices, state)

    def report(self, problem_class: str, arm: str, reward: float) -> bandit.BanditState:
        with self._lock:
            state = self._classes.get(problem_class) or bandit.new_bandit(self._arms)
            state = bandit.update(state, arm, reward)
            self._classes[problem_class] = state
        if self._state_file is not None:
            self._save()
        return state

    def _save(self) -> None:
        assert self._state_file is not None
        temporary = self._state_file.with_suffix(self._state_file.suffix + ".tmp")
        temporary.write_text(self.to_json())
        os.replace(temporary, self._state_file)  # readers never see half a file
