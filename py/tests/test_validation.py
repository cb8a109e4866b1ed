"""The validator on its own: every rule kind, paths, and wording."""

from __future__ import annotations

import math

import pytest
from google.protobuf.message import Message

from chimera.framework import InvalidArgument, Validator
from chimera.testing.v1 import echo_pb2


def good(**changes: object) -> echo_pb2.EchoRequest:
    request = echo_pb2.EchoRequest(message="hello", priority=5, weight=1.5)
    for name, value in changes.items():
        if name == "samples":
            request.samples.extend(value)  # type: ignore[arg-type]
        elif name == "metrics":
            request.metrics.update(value)  # type: ignore[arg-type]
        elif name == "inner":
            request.inner.CopyFrom(value)  # type: ignore[arg-type]
        else:
            setattr(request, name, value)
    return request


def test_good_request_passes() -> None:
    request = good(
        samples=[echo_pb2.Sample(latency_ms=0.0)],
        metrics={"p50": 1.0},
        inner=echo_pb2.Inner(id="i"),
    )
    assert Validator().first_violation(request) is None


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (good(message=""), "field 'message' is required"),
        (good(message="x" * 65), "field 'message' must have at most 64 characters (got 65)"),
        (good(message="é" * 64), None),  # characters, not UTF-8 bytes
        (good(priority=0), "field 'priority' must be >= 1 (got 0)"),
        (good(priority=101), "field 'priority' must be <= 100 (got 101)"),
        (good(weight=math.nan), "field 'weight' must be finite (got nan)"),
        (good(weight=-math.inf), "field 'weight' must be finite (got -inf)"),
        (
            good(samples=[echo_pb2.Sample(latency_ms=1), echo_pb2.Sample(latency_ms=2),
                          echo_pb2.Sample(latency_ms=math.nan)]),
            "field 'samples[2].latency_ms' must be finite (got nan)",
        ),
        (
            good(samples=[echo_pb2.Sample(latency_ms=-0.5)]),
            "field 'samples[0].latency_ms' must be >= 0 (got -0.5)",
        ),
        (
            good(samples=[echo_pb2.Sample()] * 9),
            "field 'samples' must have at most 8 elements (got 9)",
        ),
        (good(metrics={"ok": 1.0, "bad": math.inf}), "field 'metrics[\"bad\"]' must be finite (got inf)"),
        (good(inner=echo_pb2.Inner()), "field 'inner.id' is required"),
    ],
)
def test_violations_name_field_and_rule(request_: Message, expected: str | None) -> None:
    violation = Validator().first_violation(request_)
    assert (None if violation is None else str(violation)) == expected


def test_first_violation_is_in_declaration_order() -> None:
    request = echo_pb2.EchoRequest(message="", priority=0, weight=math.nan)
    assert str(Validator().first_violation(request)) == "field 'message' is required"


def test_repeated_scalars_bytes_optional_and_enums() -> None:
    validator = Validator()
    ok = echo_pb2.ListRules(scores=[0, 10], level=0, token=b"abcd", color=echo_pb2.COLOR_RED)
    assert validator.first_violation(ok) is None  # optional level=0 is present
    cases = {
        "field 'scores' must have at least 1 element (got 0)": echo_pb2.ListRules(level=1, token=b"abcd", color=1),
        "field 'scores[1]' must be <= 10 (got 11)": echo_pb2.ListRules(
            scores=[1, 11], level=1, token=b"abcd", color=1
        ),
        "field 'level' is required": echo_pb2.ListRules(scores=[1], token=b"abcd", color=1),
        "field 'level' must be <= 3 (got 4)": echo_pb2.ListRules(
            scores=[1], level=4, token=b"abcd", color=1
        ),
        "field 'token' must have at least 4 bytes (got 3)": echo_pb2.ListRules(
            scores=[1], level=1, token=b"abc", color=1
        ),
        "field 'color' is required": echo_pb2.ListRules(scores=[1], level=1, token=b"abcd"),
    }
    for expected, message in cases.items():
        assert str(validator.first_violation(message)) == expected


def test_check_raises_invalid_argument() -> None:
    with pytest.raises(InvalidArgument) as caught:
        Validator().check(good(priority=0))
    assert caught.value.field == "priority"
    assert caught.value.message == "field 'priority' must be >= 1 (got 0)"


def test_misapplied_rule_is_a_contract_error() -> None:
    with pytest.raises(ValueError, match="finite needs a float or double field"):
        Validator().prepare(echo_pb2.MisappliedRules.DESCRIPTOR)


def test_string_values_are_never_echoed() -> None:
    secret = "hunter2-" * 10
    violation = Validator().first_violation(good(message=secret))
    assert violation is not None
    assert "hunter2" not in str(violation)


@pytest.mark.parametrize(
    ("shapes", "expected"),
    [
        (echo_pb2.Shapes(digest="ab" * 32, tags=["ok"], color=1, colors=[1]), None),
        (echo_pb2.Shapes(digest="AB" * 32), "field 'digest' must match /[0-9a-f]{64}/"),
        (echo_pb2.Shapes(tags=["ok", "Not ok"]), "field 'tags[1]' must match /[a-z]+/"),
        (echo_pb2.Shapes(color=7), "field 'color' must be a defined Color (got 7)"),
        (echo_pb2.Shapes(colors=[1, -3]), "field 'colors[1]' must be a defined Color (got -3)"),
    ],
)
def test_pattern_and_defined_enum_rules(shapes: Message, expected: str | None) -> None:
    violation = Validator().first_violation(shapes)
    assert (None if violation is None else str(violation)) == expected


def test_pattern_never_quotes_the_value() -> None:
    violation = Validator().first_violation(echo_pb2.Shapes(digest="secret-token"))
    assert violation is not None and "secret" not in str(violation)


@pytest.mark.parametrize(
    ("shapes", "expected"),
    [
        (echo_pb2.Shapes(since={"seconds": 1, "nanos": 999_999_999}), None),
        (echo_pb2.Shapes(since={"nanos": -1}), "field 'since.nanos' must be in 0..999999999 (got -1)"),
        (
            echo_pb2.Shapes(since={"nanos": 2_147_483_647}),
            "field 'since.nanos' must be in 0..999999999 (got 2147483647)",
        ),
        (
            echo_pb2.Shapes(marks=[{}, {"seconds": 253_402_300_800}]),
            "field 'marks[1].seconds' must be in -62135596800..253402300799 (got 253402300800)",
        ),
        (
            echo_pb2.Shapes(seen={"a": {"nanos": -5}}),
            'field \'seen["a"].nanos\' must be in 0..999999999 (got -5)',
        ),
        (echo_pb2.Shapes(timeout={"seconds": -1, "nanos": -5}), None),
        (
            echo_pb2.Shapes(timeout={"seconds": 1, "nanos": -5}),
            "field 'timeout.nanos' must have the sign of seconds",
        ),
        (
            echo_pb2.Shapes(timeout={"seconds": 315_576_000_001}),
            "field 'timeout.seconds' must be in -315576000000..315576000000 (got 315576000001)",
        ),
    ],
)
def test_timestamps_and_durations_are_range_checked_without_rules(
    shapes: Message, expected: str | None
) -> None:
    violation = Validator().first_violation(shapes)
    assert (None if violation is None else str(violation)) == expected


def test_pattern_on_a_number_is_a_contract_error() -> None:
    with pytest.raises(ValueError, match="pattern needs a string field"):
        Validator().prepare(echo_pb2.MisappliedPattern.DESCRIPTOR)


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        (echo_pb2.MemberRules(labels={"k": "v"}, values=[1.0, 2.0], names=["a", "b"]), None),
        (echo_pb2.MemberRules(values=[1.0], names=[]), None),
        (echo_pb2.MemberRules(labels={"": "v"}), "field 'labels' keys must have 1..4 characters (got one of 0)"),
        (echo_pb2.MemberRules(labels={"toolong": "v"}), "field 'labels' keys must have 1..4 characters (got one of 7)"),
        (echo_pb2.MemberRules(labels={"k": "long"}), """field 'labels["k"]' must have at most 3 characters (got 4)"""),
        (echo_pb2.MemberRules(values=[1.0, 2.0], names=["a"]),
         "field 'names' must be empty or have one element for each of the 2 values (got 1)"),
        (echo_pb2.MemberRules(values=[1.0], names=["sixsix"]), "field 'names[0]' must have at most 5 characters (got 6)"),
    ],
)
def test_rules_on_the_members_of_collections(members: Message, expected: str | None) -> None:
    violation = Validator().first_violation(members)
    assert (None if violation is None else str(violation)) == expected


def test_len_matches_must_name_a_repeated_sibling() -> None:
    with pytest.raises(ValueError, match="len_matches needs a repeated field and the name of a repeated sibling"):
        Validator().prepare(echo_pb2.MisappliedMemberRules.DESCRIPTOR)
