"""The policy file: the shipped one loads; mistakes name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from chimera.validation.policy import Policy
from chimera.validation.verdicts import VerdictStore
from chimera.v1 import validation_pb2


def test_shipped_policy_loads() -> None:
    policy = Policy.load()
    assert "shell_exec" in policy.plan.forbidden_operations
    assert policy.module.required_exports == ("memory",)
    assert policy.verdicts.retention >= 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ({"plans": {}}, "unknown keys"),
        ({"plan": {"max_tasks": -1}}, "max_tasks"),
        ({"plan": {"max_risk_score": 6}}, "max_risk_score"),
        ({"plan": {"warn_risk_score": 4.9, "max_risk_score": 4.0}}, "warn_risk_score"),
        ({"plan": {"forbidden_operations": ["ok", ""]}}, "forbidden_operations"),
        ({"module": {"require_memory_max": "yes"}}, "require_memory_max"),
        ({"module": {"allowed_imports": ["env"]}}, "allowed_imports"),
        ({"verdicts": {"retention": 0}}, "retention"),
        ({"verdicts": {"ttl_seconds": 0}}, "ttl_seconds"),
    ],
)
def test_bad_policies_name_the_key(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Policy.from_mapping(data)


def test_load_reports_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "policy.json"
    path.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        Policy.load(path)


def test_verdicts_expire_and_are_evicted() -> None:
    now = [100.0]
    store = VerdictStore(retention=2, ttl_seconds=10, clock=lambda: now[0])
    for i in range(3):
        store.put(validation_pb2.ValidationResult(verdict_id=f"v{i}"), {"by": "test"})
    assert store.get("v0") is None  # evicted by retention
    assert store.get("v1") is not None and store.context("v2") == {"by": "test"}
    now[0] += 10.5
    assert store.get("v2") is None and len(store) == 1
