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

Every enum value must be one the contract declares, and every
``google.protobuf.Timestamp`` and ``Duration`` in a request is checked
against its documented range, whether or not the field has rules (protobuf's own
conversions raise ``ValueError`` on out-of-range values, which would surface
as INTERNAL inside a handler).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from chimera.framework.descriptors import is_map, is_repeated
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

# Fields min/max apply to: numbers, and enums by their value number (``min: 1``
# refuses an enum's _UNSPECIFIED where that makes no sense in a list).
_BOUNDED = _NUMBERS | {FieldDescriptor.CPPTYPE_ENUM}

# Ranges from google/protobuf/timestamp.proto and duration.proto.
_TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)  # 0001-01-01 .. 9999-12-31
_DURATION_SECONDS = 315_576_000_000  # +-10,000 years
_NANOS = 999_999_999


def _timestamp_violation(path: str, value: Message) -> Violation | None:
    low, high = _TIMESTAMP_SECONDS
    seconds, nanos = value.seconds, value.nanos  # type: ignore[attr-defined]
    if not low <= seconds <= high:
        return Violation(f"{path}.seconds", f"must be in {low}..{high} (got {seconds})")
    if not 0 <= nanos <= _NANOS:
        return Violation(f"{path}.nanos", f"must be in 0..{_NANOS} (got {nanos})")
    return None


def _duration_violation(path: str, value: Message) -> Violation | None:
    seconds, nanos = value.seconds, value.nanos  # type: ignore[attr-defined]
    if not -_DURATION_SECONDS <= seconds <= _DURATION_SECONDS:
        return Violation(
            f"{path}.seconds",
            f"must be in -{_DURATION_SECONDS}..{_DURATION_SECONDS} (got {seconds})",
        )
    if not -_NANOS <= nanos <= _NANOS:
        return Violation(f"{path}.nanos", f"must be in -{_NANOS}..{_NANOS} (got {nanos})")
    if seconds * nanos < 0:
        return Violation(f"{path}.nanos", "must have the sign of seconds")
    return None


# Well-known message types whose values have a range of their own.
_WELL_KNOWN: dict[str, Callable[[str, Message], Violation | None]] = {
    "google.protobuf.Duration": _duration_violation,
    "google.protobuf.Timestamp": _timestamp_violation,
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
    pattern: re.Pattern[str] | None  # compiled ``rules.pattern``
    well_known: Callable[[str, Message], Violation | None] | None  # Timestamp, Duration


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
            mapped = is_map(field)
            value = field.message_type.fields_by_name["value"] if mapped else field
            recurse = False
            well_known = None
            if value.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
                nested = value.message_type
                well_known = _WELL_KNOWN.get(nested.full_name)
                # A type still being planned (recursive contract) is visited conservatively.
                recurse = well_known is None and (
                    nested.full_name in building or bool(self._plan(nested, building))
                )
            rules = _rules_of(field)
            if rules is not None:
                _check_applicable(field, value, rules)
            is_enum = value.cpp_type == FieldDescriptor.CPPTYPE_ENUM
            if rules is not None or recurse or well_known is not None or is_enum:
                rules = rules if rules is not None else validate_pb2.FieldRules()
                plans.append(
                    _FieldPlan(
                        field=field,
                        rules=rules,
                        is_map=mapped,
                        is_repeated=is_repeated(field),
                        value=value,
                        recurse=recurse,
                        pattern=_compile(field, rules.pattern) if rules.pattern else None,
                        well_known=well_known,
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
                found = self._check_collection(plan, path, message, value)
            else:
                found = self._check_single(plan, path, message, value)
            if found is not None:
                return found
        return None

    def _check_collection(
        self, plan: _FieldPlan, path: str, message: Message, value: Any
    ) -> Violation | None:
        rules = plan.rules
        unit = "entries" if plan.is_map else "elements"
        found = _check_length(rules, path, len(value), unit)
        if found is not None:
            return found
        if rules.len_matches and value:
            expected = len(getattr(message, rules.len_matches))
            if len(value) != expected:
                return Violation(
                    path, f"must be empty or have one element for each of the {expected} "
                    f"{rules.len_matches} (got {len(value)})"
                )
        if plan.is_map and (rules.HasField("key_min_len") or rules.HasField("key_max_len")):
            for key in sorted(value):
                found = _check_key(rules, path, key)
                if found is not None:
                    return found
        if plan.is_map:
            items = ((f"{path}[{_format_key(key)}]", value[key]) for key in sorted(value))
        else:
            items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
        for item_path, item in items:
            found = self._check_value(plan, item_path, item)
            if found is not None:
                return found
        return None

    def _check_value(self, plan: _FieldPlan, path: str, value: Any) -> Violation | None:
        """The rules that apply to one value (a singular field's, or one element's)."""
        cpp = plan.value.cpp_type
        if cpp == FieldDescriptor.CPPTYPE_MESSAGE:
            if plan.well_known is not None:
                return plan.well_known(path, value)
            return self._visit(value, f"{path}.") if plan.recurse else None
        if cpp in _NUMBERS:
            return _check_number(plan.rules, path, value)
        if cpp == FieldDescriptor.CPPTYPE_ENUM:
            # Every enum, with or without defined_only: a number the contract does not
            # declare has no meaning a handler could act on.
            if plan.value.enum_type.values_by_number.get(value) is None:
                return Violation(path, f"must be a defined {plan.value.enum_type.name} (got {value})")
            return _check_number(plan.rules, path, value)
        if plan.is_repeated and plan.rules.HasField("item_max_len") and len(value) > plan.rules.item_max_len:
            return Violation(path, f"must have at most {_count(plan.rules.item_max_len, 'characters')} (got {len(value)})")
        if plan.pattern is not None and isinstance(value, str) and value:
            if plan.pattern.fullmatch(value) is None:
                # The value itself is never quoted back: it may be a secret.
                return Violation(path, f"must match /{plan.pattern.pattern}/")
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
        if field.cpp_type == FieldDescriptor.CPPTYPE_STRING:
            unit = "bytes" if field.type == FieldDescriptor.TYPE_BYTES else "characters"
            found = _check_length(rules, path, len(value), unit)
            if found is not None:
                return found
        return self._check_value(plan, path, value)


def _rules_of(field: FieldDescriptor) -> validate_pb2.FieldRules | None:
    options = field.GetOptions()
    if not options.HasExtension(validate_pb2.rules):
        return None
    return options.Extensions[validate_pb2.rules]


def _check_applicable(
    field: FieldDescriptor, value: FieldDescriptor, rules: validate_pb2.FieldRules
) -> None:
    """Raises ValueError when a rule cannot apply to the field's type."""
    where = field.full_name
    sized = is_repeated(field) or value.cpp_type == FieldDescriptor.CPPTYPE_STRING
    if (rules.HasField("min_len") or rules.HasField("max_len")) and not sized:
        raise ValueError(f"{where}: min_len/max_len need a string, bytes, repeated or map field")
    if (rules.HasField("min") or rules.HasField("max")) and value.cpp_type not in _BOUNDED:
        raise ValueError(f"{where}: min/max need a numeric or enum field")
    if rules.finite and value.cpp_type not in _FLOATS:
        raise ValueError(f"{where}: finite needs a float or double field")
    if rules.pattern and value.type != FieldDescriptor.TYPE_STRING:
        raise ValueError(f"{where}: pattern needs a string field")
    if rules.defined_only and value.cpp_type != FieldDescriptor.CPPTYPE_ENUM:
        raise ValueError(f"{where}: defined_only needs an enum field")
    string_keys = is_map(field) and field.message_type.fields_by_name["key"].type == FieldDescriptor.TYPE_STRING
    if (rules.HasField("key_min_len") or rules.HasField("key_max_len")) and not string_keys:
        raise ValueError(f"{where}: key_min_len/key_max_len need a map field with string keys")
    if rules.HasField("item_max_len") and not (is_repeated(field) and value.type == FieldDescriptor.TYPE_STRING):
        raise ValueError(f"{where}: item_max_len needs a repeated or map field of strings")
    if rules.len_matches:
        sibling = field.containing_type.fields_by_name.get(rules.len_matches)
        if not is_repeated(field) or is_map(field) or sibling is None or not is_repeated(sibling):
            raise ValueError(f"{where}: len_matches needs a repeated field and the name of a repeated sibling")


def _compile(field: FieldDescriptor, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{field.full_name}: pattern /{pattern}/ is not a regular expression: {exc}") from None


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


def _check_key(rules: validate_pb2.FieldRules, path: str, key: str) -> Violation | None:
    low = rules.key_min_len if rules.HasField("key_min_len") else 0
    high = rules.key_max_len if rules.HasField("key_max_len") else None
    if len(key) < low or (high is not None and len(key) > high):
        bounds = f"{low}..{high}" if high is not None else f"at least {low}"
        # The key itself is not quoted back: an over-long one would flood the message.
        return Violation(path, f"keys must have {bounds} characters (got one of {len(key)})")
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
