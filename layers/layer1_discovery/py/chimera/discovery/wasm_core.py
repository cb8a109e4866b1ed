"""Host side of the Chimera core ABI v1.

Mirror of ``layers/layer1_discovery/rust/wasm/src/lib.rs``.

The layer's Rust core is compiled to a WASM module with no imports that
exports ``memory``, ``chimera_core_abi_version``, ``chimera_alloc``,
``chimera_result_ptr``, ``chimera_result_len`` and one ``(ptr, len) ->
status`` function per operation. A call: ``p = chimera_alloc(n)``, write the
request at ``p``, ``status = op(p, n)``, read ``chimera_result_len()`` bytes
at ``chimera_result_ptr()``: the response when ``status == 0``, otherwise an
error payload (``str`` message, ``u32`` count, that many ``str`` details).

Requests and responses use the little-endian byte format of the core's
``wire`` module: ``u8``/``u32``/``u64``, ``f64``, and ``str``/``bytes`` as a
``u32`` length followed by the bytes. :class:`Writer` and :class:`Reader`
mirror it (``string``/``raw`` are ``str``/``bytes``); a reader must consume
a response exactly.

Every call runs in a fresh store and instance of one compiled module: calls
from concurrent RPC threads share nothing mutable, and no guest state
survives a call. The store's memory limit bounds what a bad request can do.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import wasmtime

__all__ = ["CORE_ABI_VERSION", "CoreError", "CoreModule", "Reader", "WireError", "Writer"]

CORE_ABI_VERSION = 1
_ABI_EXPORTS = (
    "chimera_core_abi_version",
    "chimera_alloc",
    "chimera_result_ptr",
    "chimera_result_len",
)
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")


class WireError(ValueError):
    """Bytes that do not follow the wire format (a host/guest mismatch)."""


class CoreError(Exception):
    """An operation returned a non-zero status: the core rejected the request."""

    def __init__(self, status: int, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(f"status {status}: {message}")
        self.status = status
        self.message = message
        self.details = tuple(details)


class Writer:
    """Builds a request."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, value: int) -> Writer:
        self._parts.append(bytes((value,)))
        return self

    def u32(self, value: int) -> Writer:
        self._parts.append(_U32.pack(value))
        return self

    def u64(self, value: int) -> Writer:
        self._parts.append(_U64.pack(value))
        return self

    def f64(self, value: float) -> Writer:
        self._parts.append(_F64.pack(value))
        return self

    def string(self, value: str) -> Writer:
        return self.raw(value.encode("utf-8"))

    def raw(self, value: bytes) -> Writer:
        self._parts.append(_U32.pack(len(value)))
        self._parts.append(bytes(value))
        return self

    def strings(self, values: Iterable[str]) -> Writer:
        items = list(values)
        self.u32(len(items))
        for item in items:
            self.string(item)
        return self

    def to_bytes(self) -> bytes:
        return b"".join(self._parts)


class Reader:
    """Reads a response in order."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def _take(self, n: int, what: str) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise WireError(f"truncated response: {what} at offset {self._pos}")
        out = self._data[self._pos : end]
        self._pos = end
        return out

    def u8(self) -> int:
        return self._take(1, "u8")[0]

    def u32(self) -> int:
        return int(_U32.unpack(self._take(4, "u32"))[0])

    def u64(self) -> int:
        return int(_U64.unpack(self._take(8, "u64"))[0])

    def f64(self) -> float:
        return float(_F64.unpack(self._take(8, "f64"))[0])

    def raw(self) -> bytes:
        return self._take(self.u32(), "bytes")

    def string(self) -> str:
        return self.raw().decode("utf-8")

    def strings(self) -> list[str]:
        return [self.string() for _ in range(self.u32())]

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise WireError(f"{len(self._data) - self._pos} trailing bytes in response")


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
        ptr = int(exports["chimera_alloc"](store, len(request))) & 0xFFFFFFFF
        if ptr == 0 or ptr + len(request) > memory.data_len(store):
            raise RuntimeError(f"chimera_alloc({len(request)}) failed")
        if request:
            memory.write(store, request, ptr)
        status = int(exports[operation](store, ptr, len(request)))
        rptr = int(exports["chimera_result_ptr"](store)) & 0xFFFFFFFF
        rlen = int(exports["chimera_result_len"](store)) & 0xFFFFFFFF
        if rptr + rlen > memory.data_len(store):
            raise RuntimeError("core result lies outside its memory")
        raw = bytes(memory.read(store, rptr, rptr + rlen))
        if status != 0:
            r = Reader(raw)
            message = r.string()
            details = r.strings()
            raise CoreError(status, message, details)
        return raw
