"""The bandit's memory: one ``chimera.optim.bandit.BanditState`` per arm set
and problem class, chosen by the Rust core's UCB1.

Arm sets: ``portfolio`` (this service's strategies) and ``genetic_algorithm``
(layer 7's operator arms). The state of a class is kept under the key
``<arm set>/<problem class>``, in memory or, with a genetics target, in
layer 7's genome store (GeneticsService Put/GetBanditState), read before each
choice and written after each outcome, so every layer-6 process that shares
the store shares what the bandit learnt.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import grpc

from chimera.evolution.core import ArmChoice, EvolutionCore
from chimera.framework.errors import FailedPrecondition, UpstreamError
from chimera.optim import bandit
from chimera.v1 import genetics_pb2, genetics_pb2_grpc

__all__ = ["BanditBook", "BanditMemory", "Choice", "GenomeStoreMemory", "InProcessMemory"]


@dataclass(frozen=True)
class Choice:
    arm: str
    exploration: bool
    reason: str
    scores: tuple[float, ...]
    state: bandit.BanditState  # the class's statistics at decision time


class BanditMemory(Protocol):
    """Where the states live, by key."""

    def load(self, key: str) -> bandit.BanditState | None: ...

    def save(self, key: str, state: bandit.BanditState) -> None: ...


class InProcessMemory:
    """States in this process only (no genetics target): lost on restart."""

    def __init__(self) -> None:
        self._states: dict[str, bandit.BanditState] = {}

    def load(self, key: str) -> bandit.BanditState | None:
        return self._states.get(key)

    def save(self, key: str, state: bandit.BanditState) -> None:
        self._states[key] = state


class GenomeStoreMemory:
    """States in layer 7's genome store (its bandit_state table), through its contract."""

    def __init__(self, genetics: genetics_pb2_grpc.GeneticsServiceStub, timeout_s: float = 10.0) -> None:
        self._genetics = genetics
        self._timeout_s = timeout_s

    def load(self, key: str) -> bandit.BanditState | None:
        try:
            record = self._genetics.GetBanditState(
                genetics_pb2.GetBanditStateRequest(problem_class=key), timeout=self._timeout_s
            )
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call) and exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise UpstreamError.from_rpc(exc, "the bandit's store, genetics GetBanditState") from exc
        return bandit.BanditState(
            arms=tuple(a.name for a in record.arms),
            pulls=tuple(int(a.pulls) for a in record.arms),
            reward_sums=tuple(float(a.reward_sum) for a in record.arms),
            exploration=record.exploration,
        )

    def save(self, key: str, state: bandit.BanditState) -> None:
        tallies = [
            genetics_pb2.BanditArmTally(name=arm, pulls=state.pulls[i], reward_sum=state.reward_sums[i])
            for i, arm in enumerate(state.arms)
        ]
        request = genetics_pb2.PutBanditStateRequest(
            state=genetics_pb2.BanditStateRecord(problem_class=key, arms=tallies, exploration=state.exploration)
        )
        try:
            self._genetics.PutBanditState(request, timeout=self._timeout_s)
        except grpc.RpcError as exc:
            raise UpstreamError.from_rpc(exc, "the bandit's store, genetics PutBanditState") from exc


class BanditBook:
    """Bandit state per arm set and problem class; thread-safe."""

    def __init__(
        self, core: EvolutionCore, arm_sets: Mapping[str, tuple[str, ...]], memory: BanditMemory
    ) -> None:
        self._core = core
        self._arm_sets = dict(arm_sets)
        self._memory = memory
        self._lock = threading.Lock()

    def arms(self, arm_set: str) -> tuple[str, ...]:
        return self._arm_sets[arm_set]

    def state(self, arm_set: str, problem_class: str) -> bandit.BanditState:
        key = f"{arm_set}/{problem_class}"
        stored = self._memory.load(key)
        if stored is None:
            return bandit.new_bandit(self._arm_sets[arm_set])
        if stored.arms != self._arm_sets[arm_set]:
            raise FailedPrecondition(
                f"the stored bandit state {key!r} names arms {stored.arms}, "
                f"not this service's {self._arm_sets[arm_set]}"
            )
        return stored

    def choose(self, arm_set: str, problem_class: str) -> Choice:
        state = self.state(arm_set, problem_class)
        picked: ArmChoice = self._core.choose_arm(
            state.exploration, [(n, state.mean(a)) for a, n in zip(state.arms, state.pulls)]
        )
        arm = state.arms[picked.arm]
        return Choice(arm, picked.exploration, f"{arm}: {picked.reason}", picked.indices, state)

    def report(self, arm_set: str, problem_class: str, arm: str, reward: float) -> bandit.BanditState:
        with self._lock:  # read, update, write as one step within this process
            state = bandit.update(self.state(arm_set, problem_class), arm, reward)
            self._memory.save(f"{arm_set}/{problem_class}", state)
        return state
