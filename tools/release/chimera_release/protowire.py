"""Decodes `bazel query --output=streamed_proto` without generated code.

The stream is a sequence of varint-length-delimited `blaze_query.Target`
messages (src/main/protobuf/build.proto). Only the fields the release tool
reads are decoded; field numbers are build.proto's, stable since Bazel 0.x.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

# build.proto field numbers.
_TARGET_TYPE, _TARGET_RULE, _TARGET_SOURCE, _TARGET_GENERATED = 1, 2, 3, 4
_RULE_NAME, _RULE_CLASS, _RULE_ATTRIBUTE, _RULE_INPUT, _RULE_OUTPUT = 1, 2, 4, 5, 6
_ATTR_NAME, _ATTR_TYPE, _ATTR_INT, _ATTR_STRING, _ATTR_STRING_LIST = 1, 2, 3, 5, 6
_ATTR_LOCATION, _ATTR_BOOL = 12, 14
_SOURCE_NAME, _SOURCE_SUBINCLUDE = 1, 3
_GENERATED_NAME, _GENERATED_RULE = 1, 2
_WIRE_VARINT, _WIRE_FIXED64, _WIRE_BYTES, _WIRE_FIXED32 = 0, 1, 2, 5


@dataclasses.dataclass
class Attribute:
    name: str
    value: bytes  # the attribute message minus any location: a stable value encoding


@dataclasses.dataclass
class Rule:
    name: str
    rule_class: str
    attributes: list[Attribute]
    inputs: list[str]
    outputs: list[str]


@dataclasses.dataclass
class SourceFile:
    name: str
    subincludes: list[str]  # for a BUILD file: the .bzl files its package loads


@dataclasses.dataclass
class GeneratedFile:
    name: str
    generating_rule: str


Target = Rule | SourceFile | GeneratedFile


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yields (field number, wire type, value) for each field of one message."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _WIRE_VARINT:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == _WIRE_BYTES:
            length, pos = _varint(data, pos)
            yield number, wire, data[pos : pos + length]
            pos += length
        elif wire == _WIRE_FIXED64:
            yield number, wire, data[pos : pos + 8]
            pos += 8
        elif wire == _WIRE_FIXED32:
            yield number, wire, data[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _attribute(data: bytes) -> Attribute:
    # Fast path (every attribute, in practice): Bazel writes the name first, and
    # bazel.QUERY_FLAGS has --noproto:locations, so the message holds no
    # location to strip and its bytes are a stable encoding of the value.
    if data[:1] == b"\x0a" and data[1] < 0x80:
        return Attribute(name=data[2 : 2 + data[1]].decode(), value=data)
    return _attribute_slow(data)


def _attribute_slow(data: bytes) -> Attribute:
    name = ""
    kept = bytearray()
    pos, end = 0, len(data)
    while pos < end:
        start = pos
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == _WIRE_VARINT:
            value, pos = _varint(data, pos)
        elif wire == _WIRE_BYTES:
            length, pos = _varint(data, pos)
            value = data[pos : pos + length]
            pos += length
        else:
            pos += 8 if wire == _WIRE_FIXED64 else 4
            value = None
        if number == _ATTR_NAME:
            name = value.decode()
        if number != _ATTR_LOCATION:
            kept += data[start:pos]
    return Attribute(name=name, value=bytes(kept))


def _rule(data: bytes) -> Rule:
    rule = Rule(name="", rule_class="", attributes=[], inputs=[], outputs=[])
    for number, _, value in fields(data):
        if number == _RULE_NAME:
            rule.name = value.decode()
        elif number == _RULE_CLASS:
            rule.rule_class = value.decode()
        elif number == _RULE_ATTRIBUTE:
            rule.attributes.append(_attribute(value))
        elif number == _RULE_INPUT:
            rule.inputs.append(value.decode())
        elif number == _RULE_OUTPUT:
            rule.outputs.append(value.decode())
    return rule


def _source_file(data: bytes) -> SourceFile:
    source = SourceFile(name="", subincludes=[])
    for number, _, value in fields(data):
        if number == _SOURCE_NAME:
            source.name = value.decode()
        elif number == _SOURCE_SUBINCLUDE:
            source.subincludes.append(value.decode())
    return source


def _generated_file(data: bytes) -> GeneratedFile:
    generated = GeneratedFile(name="", generating_rule="")
    for number, _, value in fields(data):
        if number == _GENERATED_NAME:
            generated.name = value.decode()
        elif number == _GENERATED_RULE:
            generated.generating_rule = value.decode()
    return generated


def _target(data: bytes) -> Target | None:
    for number, _, value in fields(data):
        if number == _TARGET_RULE:
            return _rule(value)
        if number == _TARGET_SOURCE:
            return _source_file(value)
        if number == _TARGET_GENERATED:
            return _generated_file(value)
    return None  # package and environment groups carry nothing to hash


def attribute_text(attribute: Attribute) -> str:
    """A short human rendering of an attribute's value (for reason messages)."""
    scalars: list[str] = []
    items: list[str] = []
    for number, wire, value in fields(attribute.value):
        if number in (_ATTR_INT, _ATTR_BOOL) and not isinstance(value, bytes):
            scalars.append(str(value))
        elif number == _ATTR_STRING and isinstance(value, bytes):
            return value.decode(errors="replace")
        elif number == _ATTR_STRING_LIST and isinstance(value, bytes):
            items.append(value.decode(errors="replace"))
        elif number not in (_ATTR_NAME, _ATTR_TYPE) and isinstance(value, bytes):
            items.append(value.hex()[:16])
    if items:
        return "[" + ", ".join(items) + "]"
    return scalars[-1] if scalars else ""


def read_stream(data: bytes) -> Iterator[Target]:
    """Yields the targets of a streamed_proto query result."""
    pos, end = 0, len(data)
    while pos < end:
        length, pos = _varint(data, pos)
        target = _target(data[pos : pos + length])
        pos += length
        if target is not None:
            yield target
