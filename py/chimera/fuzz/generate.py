"""Seeded random and malformed protobuf messages, built from descriptors alone.

Values are chosen to break handlers that trust their input: NaN and
infinities, integer extremes, empty / huge / odd strings, unknown enum
numbers, out-of-range Timestamps and Durations, garbage bytes and broken
WebAssembly. Sizes stay bounded so one request never exceeds a server's
message limit.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from chimera.framework.descriptors import is_map, is_repeated

__all__ = ["MessageFuzzer"]

_F = FieldDescriptor
_FLOATS = [0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.5]
_INTS = {
    _F.CPPTYPE_INT32: [0, 1, -1, 2**31 - 1, -(2**31)],
    _F.CPPTYPE_INT64: [0, 1, -1, 2**63 - 1, -(2**63)],
    _F.CPPTYPE_UINT32: [0, 1, 2**32 - 1],
    _F.CPPTYPE_UINT64: [0, 1, 2**64 - 1],
}
_STRINGS = [
    "",
    "a",
    " ",
    "\x00",
    "名前",
    "\U0001f680" * 8,
    "../../etc/passwd",
    "%s%n%x",
    "' OR 1=1 --",
    "a" * 5000,
    "\u202e" + "evil",
]
_WASM_MAGIC = b"\x00asm\x01\x00\x00\x00"
# (seconds, nanos): valid, and out of range for Timestamp and Duration alike.
_TIME_VALUES = [
    (0, 0),
    (1_700_000_000, 5),
    (0, -1),
    (0, 2**31 - 1),
    (-(2**63), 0),
    (2**63 - 1, 0),
    (253_402_300_800, 0),
    (1, -5),
]
_WELL_KNOWN_TIME = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration"})


class MessageFuzzer:
    """Random messages of any type, reproducible from ``seed``."""

    def __init__(self, seed: int, *, max_depth: int = 4, max_repeated: int = 4) -> None:
        self._random = random.Random(seed)
        self._max_depth = max_depth
        self._max_repeated = max_repeated

    def message(self, cls: Callable[[], Message]) -> Message:
        message = cls()
        self._fill(message, 0)
        return message

    def garbage(self) -> bytes:
        """Bytes that are (very likely) no valid serialization of anything."""
        r = self._random
        choices = [
            bytes(r.getrandbits(8) for _ in range(r.randint(1, 64))),
            b"\xff" * r.randint(1, 16),
            b"\x0a\xff\xff\xff\xff\x0f",  # length-delimited field claiming 4 GiB
            b"\x08",  # a varint tag with no value
        ]
        return r.choice(choices)

    # --- filling ---------------------------------------------------------
    def _fill(self, message: Message, depth: int) -> None:
        descriptor: Descriptor = message.DESCRIPTOR
        if descriptor.full_name in _WELL_KNOWN_TIME:
            seconds, nanos = self._random.choice(_TIME_VALUES)
            message.seconds, message.nanos = seconds, nanos  # type: ignore[attr-defined]
            return
        for field in descriptor.fields:
            if self._random.random() < 0.35:
                continue  # leave some fields unset: missing input is input too
            if is_map(field):
                self._fill_map(message, field, depth)
            elif is_repeated(field):
                self._fill_repeated(message, field, depth)
            elif field.cpp_type == _F.CPPTYPE_MESSAGE:
                if depth < self._max_depth:
                    self._fill(getattr(message, field.name), depth + 1)
            else:
                setattr(message, field.name, self._scalar(field))

    def _fill_repeated(self, message: Message, field: FieldDescriptor, depth: int) -> None:
        container = getattr(message, field.name)
        for _ in range(self._count()):
            if field.cpp_type == _F.CPPTYPE_MESSAGE:
                if depth < self._max_depth:
                    self._fill(container.add(), depth + 1)
            else:
                container.append(self._scalar(field))

    def _fill_map(self, message: Message, field: FieldDescriptor, depth: int) -> None:
        container = getattr(message, field.name)
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        for _ in range(self._count()):
            key = self._scalar(key_field)
            if value_field.cpp_type == _F.CPPTYPE_MESSAGE:
                if depth < self._max_depth:
                    self._fill(container[key], depth + 1)
            else:
                container[key] = self._scalar(value_field)

    def _count(self) -> int:
        r = self._random
        return r.choice([0, 1, 2, r.randint(0, self._max_repeated), 64 if r.random() < 0.05 else 1])

    def _scalar(self, field: FieldDescriptor) -> Any:
        r = self._random
        cpp = field.cpp_type
        if cpp in (_F.CPPTYPE_DOUBLE, _F.CPPTYPE_FLOAT):
            value = r.choice(_FLOATS + [r.gauss(0.0, 1e6)])
            if cpp == _F.CPPTYPE_FLOAT and math.isfinite(value) and abs(value) > 3.4e38:
                value = math.copysign(math.inf, value)
            return value
        if cpp in _INTS:
            low, high = min(_INTS[cpp]), max(_INTS[cpp])
            return r.choice(_INTS[cpp] + [r.randint(low, high), r.randint(-3, 100) % (high + 1)])
        if cpp == _F.CPPTYPE_BOOL:
            return r.random() < 0.5
        if cpp == _F.CPPTYPE_ENUM:
            defined = [v.number for v in field.enum_type.values]
            return r.choice(defined + [-1, 9999, 2**31 - 1])
        if field.type == _F.TYPE_BYTES:
            return self._bytes()
        return r.choice(_STRINGS + ["".join(chr(r.randint(32, 0x2FFF)) for _ in range(r.randint(1, 40)))])

    def _bytes(self) -> bytes:
        r = self._random
        junk = bytes(r.getrandbits(8) for _ in range(r.randint(0, 256)))
        return r.choice([b"", junk, _WASM_MAGIC + junk, _WASM_MAGIC[:5], b"\x00asm\xff\xff\xff\xff" + junk])
