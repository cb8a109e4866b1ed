"""Checks a message against the ``(chimera.v1.rules)`` options of its contract.

The rules live in the .proto files (see proto/chimera/v1/validate.proto), so
every layer gets the same checks from its contract alone. ``Validator`` walks a
message by its descriptor, recursing into sub-messages, repeated elements and
map values, and reports the first violation in declaration order with a path
such as ``kpis[2].latency_ms``. Values of string/bytes fields are never quoted
back (they may hold secrets); only their lengths are.

Presence for ``required``: strings, bytes, repeated and map fields must be
non-empty; messages and ``optional`` scalars must be set; enums must not be 0
(the ``_UNSPECIFIED`` value); plain proto3 numbers and bools must be non-zero,
since proto3 cannot tell 0 from unset.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from chimera.framework.errors import InvalidArgument
from chimera.v1 import validate_pb2

__all__ = ["Validator", "Violation"]

_FLOATS = frozenset({FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT})
_NUMBERS = _FLOATS | {
    FieldDescriptor.CPPTYPE_INT32,
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32,
    FieldDescriptor.CPPTYPE_UINT64,
}


@dataclass(frozen=True)
class Violation:
    """One broken rule: the field path and what it must satisfy."""

    field: str
    rule: str

    def __str__(self) -> str:
        return f"field '{self.field}' {self.rule}"

    def to_error(self) -> InvalidArgument:
        return InvalidArgument(self.field, self.rule)


@dataclass(frozen=True)
class _FieldPlan:
    field: FieldDescriptor
    rules: validate_pb2.FieldRules
    is_map: bool
    is_repeated: bool
    value: FieldDescriptor  # the map entry's value field for maps, else ``field``
    recurse: bool  # values are messages that have rules somewhere inside


class Validator:
    """Validates messages; rule plans are built once per message type and cached.

    ``prepare`` checks that every rule fits its field's type (``finite`` on a
    string is a contract bug) and raises ValueError otherwise, so a server can
    refuse to start with a broken contract instead of failing per request.
    """

    def __init__(self) -> None:
        self._plans: dict[str, tuple[_FieldPlan, ...]] = {}

    def prepare(self, descriptor: Descriptor) -> None:
        self._plan(descriptor, set())

    def first_violation(self, message: Message) -> Violation | None:
        return self._visit(message, "")

    def check(self, message: Message) -> None:
        """Raises InvalidArgument for the first violation."""
        violation = self.first_violation(message)
        if violation is not None:
            raise violation.to_error()

    # --- planning -------------------------------------------------------
    def _plan(self, descriptor: Descriptor, building: set[str]) -> tuple[_FieldPlan, ...]:
        name = descriptor.full_name
        cached = self._plans.get(name)
        if cached is not None:
            return cached
        building.add(name)
        plans = []
        for field in descriptor.fields:
            is_map = _is_map(field)
            value = field.message_type.fields_by_name["value"] if is_map else field
            recurse = False
            if value.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                nested = value.message_type
                # A type still being planned (recursive contract) is visited conservatively.
                recurse = nested.full_name in building or bool(self._plan(nested, building))
            rules = _rules_of(field)
            if rules is not None:
                _check_applicable(field, value, rules)
            if rules is not None or recurse:
                plans.append(
                    _FieldPlan(
                        field=field,
                        rules=rules if rules is not None else validate_pb2.FieldRules(),
                        is_map=is_map,
                        is_repeated=_is_repeated(field),
                        value=value,
                        recurse=recurse,
                    )
                )
        building.discard(name)
        result = tuple(plans)
        self._plans[name] = result
        return result

    # --- checking -------------------------------------------------------
    def _visit(self, message: Message, prefix: str) -> Violation | None:
        for plan in self._plan(message.DESCRIPTOR, set()):
            path = f"{prefix}{plan.field.name}"
            value = getattr(message, plan.field.name)
            if plan.is_repeated:
                found = self._check_collection(plan, path, value)
            else:
                found = self._check_single(plan, path, message, value)
            if found is not None:
                return found
        return None

    def _check_collection(self, plan: _FieldPlan, path: str, value: Any) -> Violation | None:
        rules = plan.rules
        unit = "entries" if plan.is_map else "elements"
        found = _check_length(rules, path, len(value), unit)
        if found is not None or not (plan.recurse or plan.value.cpp_type in _NUMBERS):
            return found  # only messages and numbers have rules per element
        if plan.is_map:
            items = ((f"{path}[{_format_key(key)}]", value[key]) for key in sorted(value))
        else:
            items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
        for item_path, item in items:
            if plan.recurse:
                found = self._visit(item, f"{item_path}.")
            else:
                found = _check_number(rules, item_path, item)
            if found is not None:
                return found
        return None

    def _check_single(
        self, plan: _FieldPlan, path: str, message: Message, value: Any
    ) -> Violation | None:
        field, rules = plan.field, plan.rules
        if field.has_presence:
            if not message.HasField(field.name):
                return Violation(path, "is required") if rules.required else None
        elif rules.required and not value:
            return Violation(path, "is required")
        cpp = field.cpp_type
        if cpp == FieldDescriptor.CPPTYPE_MESSAGE:
            return self._visit(value, f"{path}.") if plan.recurse else None
        if cpp == FieldDescriptor.CPPTYPE_STRING:
            unit = "bytes" if field.type == FieldDescriptor.TYPE_BYTES else "characters"
            return _check_length(rules, path, len(value), unit)
        if cpp in _NUMBERS:
            return _check_number(rules, path, value)
        return None


def _rules_of(field: FieldDescriptor) -> validate_pb2.FieldRules | None:
    options = field.GetOptions()
    if not options.HasExtension(validate_pb2.rules):
        return None
    return options.Extensions[validate_pb2.rules]


def _is_repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 5.x; ``label`` before
    if isinstance(flag, bool):
        return flag
    return field.label == FieldDescriptor.LABEL_REPEATED


def _is_map(field: FieldDescriptor) -> bool:
    return (
        field.message_type is not None
        and field.message_type.GetOptions().map_entry
        and _is_repeated(field)
    )


def _check_applicable(
    field: FieldDescriptor, value: FieldDescriptor, rules: validate_pb2.FieldRules
) -> None:
    """Raises ValueError when a rule cannot apply to the field's type."""
    where = field.full_name
    sized = _is_repeated(field) or value.cpp_type == FieldDescriptor.CPPTYPE_STRING
    if (rules.HasField("min_len") or rules.HasField("max_len")) and not sized:
        raise ValueError(f"{where}: min_len/max_len need a string, bytes, repeated or map field")
    if (rules.HasField("min") or rules.HasField("max")) and value.cpp_type not in _NUMBERS:
        raise ValueError(f"{where}: min/max need a numeric field")
    if rules.finite and value.cpp_type not in _FLOATS:
        raise ValueError(f"{where}: finite needs a float or double field")


def _check_length(
    rules: validate_pb2.FieldRules, path: str, length: int, unit: str
) -> Violation | None:
    if rules.required and length == 0:
        return Violation(path, "is required")
    if rules.HasField("min_len") and length < rules.min_len:
        return Violation(path, f"must have at least {_count(rules.min_len, unit)} (got {length})")
    if rules.HasField("max_len") and length > rules.max_len:
        return Violation(path, f"must have at most {_count(rules.max_len, unit)} (got {length})")
    return None


_SINGULAR = {"characters": "character", "bytes": "byte", "elements": "element", "entries": "entry"}


def _count(n: int, unit: str) -> str:
    return f"{n} {_SINGULAR[unit] if n == 1 else unit}"


def _check_number(rules: validate_pb2.FieldRules, path: str, value: float) -> Violation | None:
    if rules.finite and not math.isfinite(value):
        return Violation(path, f"must be finite (got {_format_number(value)})")
    # ``not >=`` so that NaN fails a bound even without ``finite``.
    if rules.HasField("min") and not value >= rules.min:
        return Violation(path, f"must be >= {_format_number(rules.min)} (got {_format_number(value)})")
    if rules.HasField("max") and not value <= rules.max:
        return Violation(path, f"must be <= {_format_number(rules.max)} (got {_format_number(value)})")
    return None


def _format_number(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _format_key(key: object) -> str:
    return json.dumps(key) if isinstance(key, str) else str(key)
