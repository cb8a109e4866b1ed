"""Named module slots with versioned deployments, atomic activation and rollback.

This is the layer's module registry, behind ``DeployModule``,
``DeployGenome``, ``RollbackGenome`` and ``ListVersions`` (execution.proto):
many slots, modules that are stored without being activated, a genome
deployed onto any module already in the slot, rollback to a chosen version,
and optimistic concurrency. Tasks resolve their deployment here when each
attempt starts (:func:`chimera.execution.runner.make_executor`).

Why the shape:

* A :class:`Deployment` is immutable; a task resolves one when its attempt
  starts and runs on it to the end, so activation is only a change of which
  version number is active, made under one lock (atomic hot swap).
* ``previous_version`` follows the contract literally: the version that was
  active when this one *last became* active. Re-activating a version by
  rollback therefore records the version it replaced, and a second rollback
  with ``to_version = 0`` undoes the first.
* Genomes are opaque here (the service stores its ``AgentGenome`` message);
  only their parameters, id and agent matter to running tasks.
* A store made by :meth:`DeploymentStore.recorded` keeps a durable record
  (:mod:`chimera.execution.deployment_record`): each admitted module's bytes
  before a deployment refers to them, and the whole state (:class:`SlotState`
  by slot) after every mutation, under the lock, so the record is written in
  the order the changes happened; it starts from what the record held.
* Its refusals are the framework's errors (NOT_FOUND, FAILED_PRECONDITION,
  ABORTED), so a handler lets them pass and the caller gets the store's message.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chimera.execution.sandbox import CompiledModule
from chimera.framework import Aborted, FailedPrecondition, NotFound

if TYPE_CHECKING:  # the record module imports this one
    from chimera.execution.deployment_record import DeploymentRecord

__all__ = [
    "Deployment",
    "DeploymentStore",
    "DeploymentView",
    "ModuleNotInSlot",
    "NoActiveDeployment",
    "NothingToRollBack",
    "SlotNotFound",
    "SlotState",
    "VersionConflict",
    "VersionNotFound",
]


class SlotNotFound(NotFound, LookupError):
    """No module was ever deployed under this name."""


class VersionNotFound(NotFound, LookupError):
    """The slot has no deployment with this version number."""


class ModuleNotInSlot(NotFound, LookupError):
    """No deployment of the slot uses a module with this digest."""


class NoActiveDeployment(FailedPrecondition, RuntimeError):
    """The slot holds modules but none is active yet."""


class NothingToRollBack(FailedPrecondition, RuntimeError):
    """The active deployment has no previous version."""


class VersionConflict(Aborted, RuntimeError):
    """``expected_active_version`` no longer matches the active version."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"expected active version {expected}, but {actual} is active")
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class Deployment:
    """One immutable version of a slot: a compiled module plus optional genome."""

    module_name: str
    version: int
    module: CompiledModule
    verdict_id: str
    params: tuple[float, ...] = ()
    genome_id: str = ""
    genome_agent_id: str = ""
    genome: object | None = None  # the service's AgentGenome message, returned as is
    deployed_at: float = field(default_factory=time.time)

    @property
    def module_sha256(self) -> str:
        """SHA-256 of the module bytes."""
        return self.module.digest


@dataclass(frozen=True)
class DeploymentView:
    """A deployment with the slot state the contract reports alongside it."""

    deployment: Deployment
    active: bool
    previous_version: int


@dataclass(frozen=True)
class SlotState:
    """One slot as a value: its deployments (version ``i + 1`` at index ``i``),
    the active version (0 = none) and each version's ``previous_version``."""

    deployments: tuple[Deployment, ...]
    active: int
    previous_of: Mapping[int, int]


@dataclass
class _Slot:
    deployments: list[Deployment] = field(default_factory=list)
    active: int = 0
    previous_of: dict[int, int] = field(default_factory=dict)


class DeploymentStore:
    """All slots; every mutation and every read of the active version takes one lock.

    With a ``record`` (see :meth:`recorded`), the state of every slot is written
    to it after each mutation, under the lock (a failed write fails the
    mutation's call, after the change).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        record: DeploymentRecord | None = None,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {}
        self._record = record

    @classmethod
    def recorded(
        cls,
        record: DeploymentRecord,
        compile_module: Callable[[bytes], CompiledModule],
        clock: Callable[[], float] = time.time,
    ) -> DeploymentStore:
        """A store that keeps ``record`` and starts with every slot it recorded (the active
        version and the canaries after it live again); ValueError names a bad record."""
        store = cls(clock, record)
        store._restore(record.read(compile_module))
        return store

    def _restore(self, slots: Mapping[str, SlotState]) -> None:
        with self._lock:
            for name, state in slots.items():
                versions = [d.version for d in state.deployments]
                if versions != list(range(1, len(versions) + 1)) or not 0 <= state.active <= len(versions):
                    raise ValueError(
                        f"slot {name!r}: versions {versions} with active {state.active} are inconsistent"
                    )
                self._slots[name] = _Slot(
                    list(state.deployments), state.active, dict(state.previous_of)
                )

    # -- mutations -------------------------------------------------------

    def add_module(
        self,
        module_name: str,
        module: CompiledModule,
        verdict_id: str,
        *,
        activate: bool,
        wasm: bytes = b"",
    ) -> DeploymentView:
        """Stores a module (no genome) as the slot's next version, creating the slot.

        ``wasm`` (the module's bytes) is required when the store keeps a record."""
        if self._record is not None:
            if not wasm:
                raise ValueError("add_module: a recorded store needs the module's bytes")
            self._record.keep_module(module.digest, wasm)
        with self._lock:
            slot = self._slots.setdefault(module_name, _Slot())
            dep = Deployment(
                module_name,
                len(slot.deployments) + 1,
                module,
                verdict_id,
                deployed_at=self._clock(),
            )
            slot.deployments.append(dep)
            if activate:
                self._activate(slot, dep.version)
            self._changed()
            return self._view(slot, dep)

    def deploy_genome(
        self,
        module_name: str,
        params: Sequence[float],
        *,
        genome_id: str = "",
        genome_agent_id: str = "",
        genome: object | None = None,
        module_sha256: str = "",
        expected_active_version: int = 0,
    ) -> DeploymentView:
        """Activates a new deployment: ``params`` on the named (or active) module.

        Raises :class:`SlotNotFound`, :class:`ModuleNotInSlot`,
        :class:`NoActiveDeployment` or :class:`VersionConflict`.
        """
        values = tuple(float(p) for p in params)
        with self._lock:
            slot = self._slot(module_name)
            self._check_expected(slot, expected_active_version)
            source = self._source(slot, module_name, module_sha256)
            dep = Deployment(
                module_name,
                len(slot.deployments) + 1,
                source.module,
                source.verdict_id,
                values,
                genome_id,
                genome_agent_id,
                genome,
                self._clock(),
            )
            slot.deployments.append(dep)
            self._activate(slot, dep.version)
            self._changed()
            return self._view(slot, dep)

    def rollback(self, module_name: str, to_version: int = 0) -> DeploymentView:
        """Re-activates ``to_version`` (0: the active deployment's previous version)."""
        with self._lock:
            slot = self._slot(module_name)
            if to_version == 0:
                target = slot.previous_of.get(slot.active, 0) if slot.active else 0
                if target == 0:
                    raise NothingToRollBack(
                        f"slot {module_name!r}: the active deployment has no previous version"
                    )
            else:
                if not 1 <= to_version <= len(slot.deployments):
                    raise VersionNotFound(f"slot {module_name!r} has no version {to_version}")
                target = to_version
            if target != slot.active:
                self._activate(slot, target)
                self._changed()
            return self._view(slot, slot.deployments[target - 1])

    # -- reads -----------------------------------------------------------

    def resolve(self, module_name: str, version: int = 0) -> Deployment:
        """The deployment a task runs on: ``version``, or the active one for 0."""
        with self._lock:
            slot = self._slot(module_name)
            if version == 0:
                if slot.active == 0:
                    raise NoActiveDeployment(f"slot {module_name!r} has no active deployment")
                return slot.deployments[slot.active - 1]
            if not 1 <= version <= len(slot.deployments):
                raise VersionNotFound(f"slot {module_name!r} has no version {version}")
            return slot.deployments[version - 1]

    def module_source(self, module_name: str, module_sha256: str = "") -> Deployment:
        """The newest deployment of the slot with this module digest (empty: the active one).

        Raises :class:`SlotNotFound`, :class:`ModuleNotInSlot` or :class:`NoActiveDeployment`.
        """
        with self._lock:
            return self._source(self._slot(module_name), module_name, module_sha256)

    def list(self, module_name: str, limit: int) -> tuple[list[DeploymentView], int]:
        """Up to ``limit`` deployments, newest first, and the active version (0 = none)."""
        with self._lock:
            slot = self._slot(module_name)
            newest = slot.deployments[::-1][:limit]
            return [self._view(slot, d) for d in newest], slot.active

    def uses_module(self, digest: str) -> bool:
        """True when any deployment of any slot runs the module with this digest."""
        with self._lock:
            return any(
                d.module_sha256 == digest for s in self._slots.values() for d in s.deployments
            )

    def active_count(self) -> int:
        """Number of slots with an active deployment."""
        with self._lock:
            return sum(1 for s in self._slots.values() if s.active)

    # -- internals -------------------------------------------------------

    def _states(self) -> dict[str, SlotState]:
        return {
            name: SlotState(tuple(slot.deployments), slot.active, dict(slot.previous_of))
            for name, slot in self._slots.items()
        }

    def _changed(self) -> None:
        if self._record is not None:
            self._record.write(self._states())

    def _slot(self, module_name: str) -> _Slot:
        slot = self._slots.get(module_name)
        if slot is None:
            raise SlotNotFound(f"no module is deployed under {module_name!r}")
        return slot

    @staticmethod
    def _source(slot: _Slot, module_name: str, module_sha256: str) -> Deployment:
        if module_sha256:
            source = next(
                (d for d in reversed(slot.deployments) if d.module_sha256 == module_sha256), None
            )
            if source is None:
                raise ModuleNotInSlot(
                    f"slot {module_name!r} has no module with SHA-256 {module_sha256}"
                )
            return source
        if slot.active == 0:
            raise NoActiveDeployment(
                f"slot {module_name!r} has no active deployment; name a module_sha256"
            )
        return slot.deployments[slot.active - 1]

    @staticmethod
    def _check_expected(slot: _Slot, expected: int) -> None:
        if expected and expected != slot.active:
            raise VersionConflict(expected, slot.active)

    @staticmethod
    def _activate(slot: _Slot, version: int) -> None:
        slot.previous_of[version] = slot.active
        slot.active = version

    @staticmethod
    def _view(slot: _Slot, dep: Deployment) -> DeploymentView:
        return DeploymentView(dep, dep.version == slot.active, slot.previous_of.get(dep.version, 0))
