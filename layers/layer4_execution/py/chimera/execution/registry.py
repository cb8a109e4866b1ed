"""Versioned module + parameter registry with atomic hot swap and rollback.

A task takes :meth:`ModuleRegistry.active` once, when it starts, and runs on
that immutable snapshot to the end; :meth:`deploy` and :meth:`rollback` only
swap which snapshot the *next* task gets. Compilation happens before the
swap, outside the lock, so a slow compile never blocks task starts and a
module that fails validation never becomes active.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chimera.execution.sandbox import CompiledModule


class NoActiveVersion(LookupError):
    """Nothing deployed yet (or nothing to roll back to)."""


@dataclass(frozen=True)
class Version:
    """An immutable deployment: which module, which genome, and when."""

    version: int
    label: str
    module: CompiledModule
    params: tuple[float, ...]
    deployed_at: float

    @property
    def module_digest(self) -> str:
        """SHA-256 of the module bytes."""
        return self.module.digest


@dataclass(frozen=True)
class HistoryEntry:
    """One registry event, for audit and the service's history RPC."""

    action: str  # "deploy" or "rollback"
    version: int
    label: str
    module_digest: str
    at: float


class ModuleRegistry:
    """Holds deployed versions; one lock, and activation is a reference swap."""

    def __init__(
        self,
        compile_module: Callable[[bytes], CompiledModule],
        *,
        clock: Callable[[], float] = time.time,
        max_params: int = 4096,
    ) -> None:
        self._compile = compile_module
        self._clock = clock
        self._max_params = max_params
        self._lock = threading.Lock()
        self._versions: list[Version] = []
        self._stack: list[Version] = []  # activation stack; top is active
        self._history: list[HistoryEntry] = []

    def deploy(
        self, module_bytes: bytes | None, params: Sequence[float], version_label: str = ""
    ) -> Version:
        """Activates a new version and returns it.

        ``module_bytes=None`` keeps the active module and swaps only the
        genome (layer 7's usual deploy). Raises ``InvalidModule`` for bad
        bytes, ``ValueError`` for bad params, :class:`NoActiveVersion` when
        there is no module to keep.
        """
        values = tuple(float(p) for p in params)
        if len(values) > self._max_params:
            raise ValueError(f"params: {len(values)} values exceed the limit of {self._max_params}")
        for i, v in enumerate(values):
            if not math.isfinite(v):
                raise ValueError(f"params[{i}] must be finite, got {v}")
        compiled = self._compile(module_bytes) if module_bytes is not None else None
        with self._lock:
            if compiled is None:
                if not self._stack:
                    raise NoActiveVersion("no module deployed yet; module_bytes is required")
                compiled = self._stack[-1].module
            version = Version(
                version=len(self._versions) + 1,
                label=version_label or f"v{len(self._versions) + 1}",
                module=compiled,
                params=values,
                deployed_at=self._clock(),
            )
            self._versions.append(version)
            self._stack.append(version)
            self._history.append(
                HistoryEntry(
                    "deploy", version.version, version.label, compiled.digest, version.deployed_at
                )
            )
            return version

    def active(self) -> Version:
        """The snapshot new tasks should run; raises :class:`NoActiveVersion`."""
        with self._lock:
            if not self._stack:
                raise NoActiveVersion("no version deployed")
            return self._stack[-1]

    def rollback(self) -> Version:
        """Re-activates the version that was active before the current one."""
        with self._lock:
            if len(self._stack) < 2:
                raise NoActiveVersion("no previous version to roll back to")
            self._stack.pop()
            current = self._stack[-1]
            self._history.append(
                HistoryEntry(
                    "rollback", current.version, current.label, current.module_digest, self._clock()
                )
            )
            return current

    def get(self, version: int) -> Version:
        """A deployed version by number."""
        with self._lock:
            if not 1 <= version <= len(self._versions):
                raise NoActiveVersion(f"unknown version {version}")
            return self._versions[version - 1]

    def versions(self) -> tuple[Version, ...]:
        """Every version ever deployed, oldest first."""
        with self._lock:
            return tuple(self._versions)

    def history(self) -> tuple[HistoryEntry, ...]:
        """Deploy and rollback events, oldest first."""
        with self._lock:
            return tuple(self._history)
