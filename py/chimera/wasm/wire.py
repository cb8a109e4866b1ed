"""The little-endian wire format of core requests and responses.

Mirror of ``rust/wire`` (crate ``chimera_wire``): ``u8``/``u32``/``u64``,
``f64``, and ``str``/``bytes`` as a ``u32`` length followed by the bytes;
plus ``u16`` and unprefixed ``fixed`` bytes, which the guest ABI's result
record (``chimera.wasm.guest``, mirror of ``guest_abi``) uses.
:class:`Writer` and :class:`Reader` mirror it (``string``/``raw`` are
``str``/``bytes``); a reader must consume a response exactly, so a host and
guest that disagree on a layout fail loudly.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

__all__ = ["Reader", "WireError", "Writer"]

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_F64 = struct.Struct("<d")


class WireError(ValueError):
    """Bytes that do not follow the wire format (a host/guest mismatch)."""


class Writer:
    """Builds a request."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, value: int) -> Writer:
        self._parts.append(bytes((value,)))
        return self

    def u16(self, value: int) -> Writer:
        self._parts.append(_U16.pack(value))
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

    def fixed(self, value: bytes) -> Writer:
        """Bytes without a length prefix (the reader knows the length)."""
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

    def u16(self) -> int:
        return int(_U16.unpack(self._take(2, "u16"))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self._take(4, "u32"))[0])

    def u64(self) -> int:
        return int(_U64.unpack(self._take(8, "u64"))[0])

    def f64(self) -> float:
        return float(_F64.unpack(self._take(8, "f64"))[0])

    def raw(self) -> bytes:
        return self._take(self.u32(), "bytes")

    def fixed(self, n: int) -> bytes:
        return self._take(n, "bytes")

    def string(self) -> str:
        return self.raw().decode("utf-8")

    def strings(self) -> list[str]:
        return [self.string() for _ in range(self.u32())]

    def finish(self) -> None:
        if self._pos != len(self._data):
            raise WireError(f"{len(self._data) - self._pos} trailing bytes in response")
