"""Loads a core module with wasmtime and runs its operations.

Mirror of ``rust/wasm_export`` (the Chimera core ABI v1). The module has no
imports and exports ``memory``, ``chimera_core_abi_version``,
``chimera_core_alloc``, ``chimera_core_result_ptr``, ``chimera_core_result_len`` and one
``(ptr, len) -> status`` function per operation. A call: ``p =
chimera_core_alloc(n)``, write the request at ``p``, ``status = op(p, n)``, read
``chimera_core_result_len()`` bytes at ``chimera_core_result_ptr()``: the response when
``status == 0``, otherwise an error payload (``str`` message, ``u32`` count,
that many ``str`` details).

Every call runs in a fresh store and instance of one compiled module: calls
from concurrent RPC threads share nothing mutable, and no guest state
survives a call. The store's memory limit bounds what a bad request can do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import wasmtime

from chimera.wasm.wire import Reader

__all__ = ["CORE_ABI_VERSION", "CoreError", "CoreModule"]

CORE_ABI_VERSION = 1
_ABI_EXPORTS = (
    "chimera_core_abi_version",
    "chimera_core_alloc",
    "chimera_core_result_ptr",
    "chimera_core_result_len",
)


class CoreError(Exception):
    """An operation returned a non-zero status: the core rejected the request."""

    def __init__(self, status: int, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(f"status {status}: {message}")
        self.status = status
        self.message = message
        self.details = tuple(details)


class CoreModule:
    """A compiled core module; :meth:`call` runs one operation."""

    def __init__(
        self, wasm: bytes, operations: Sequence[str], memory_limit_bytes: int = 256 << 20
    ) -> None:
        self._engine = wasmtime.Engine()
        self._module = wasmtime.Module(self._engine, wasm)
        self._memory_limit = memory_limit_bytes
        exported = {e.name for e in self._module.exports}
        missing = [n for n in ("memory", *_ABI_EXPORTS, *operations) if n not in exported]
        if missing:
            raise ValueError(f"core module lacks exports {missing}")
        if self._module.imports:
            raise ValueError("core module must not import anything")
        store, exports = self._instance()
        version = exports["chimera_core_abi_version"](store)
        if version != CORE_ABI_VERSION:
            raise ValueError(f"core ABI version {version}, host speaks {CORE_ABI_VERSION}")

    @classmethod
    def from_file(cls, path: Path, operations: Sequence[str]) -> CoreModule:
        return cls(Path(path).read_bytes(), operations)

    def _instance(self) -> tuple[wasmtime.Store, Any]:
        store = wasmtime.Store(self._engine)
        store.set_limits(memory_size=self._memory_limit)
        instance = wasmtime.Instance(store, self._module, [])
        return store, instance.exports(store)

    def call(self, operation: str, request: bytes) -> bytes:
        """Runs ``operation`` on ``request``; raises CoreError for a non-zero status."""
        store, exports = self._instance()
        memory = exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        ptr = int(exports["chimera_core_alloc"](store, len(request))) & 0xFFFFFFFF
        if ptr == 0 or ptr + len(request) > memory.data_len(store):
            raise RuntimeError(f"chimera_core_alloc({len(request)}) failed")
        if request:
            memory.write(store, request, ptr)
        status = int(exports[operation](store, ptr, len(request)))
        rptr = int(exports["chimera_core_result_ptr"](store)) & 0xFFFFFFFF
        rlen = int(exports["chimera_core_result_len"](store)) & 0xFFFFFFFF
        if rptr + rlen > memory.data_len(store):
            raise RuntimeError("core result lies outside its memory")
        raw = bytes(memory.read(store, rptr, rptr + rlen))
        if status != 0:
            r = Reader(raw)
            message = r.string()
            details = r.strings()
            raise CoreError(status, message, details)
        return raw
