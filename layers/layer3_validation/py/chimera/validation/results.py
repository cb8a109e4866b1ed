"""Turning findings into a ValidationResult: statuses, risk, recommendations.

* A family's status is FAILED with any CRITICAL finding of that family,
  WARNING with any WARNING one, PASSED otherwise; ``is_valid`` is true when
  no family FAILED.
* Risk level bands (as in validation.proto): low < 1 <= medium < 2.5 <=
  high < 4 <= critical.
* Each finding gets one recommendation from the rule's advice (with the
  finding's location); duplicates are dropped, order follows the findings.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from google.protobuf import timestamp_pb2

from chimera.validation.core import CoreFinding
from chimera.v1 import common_pb2, validation_pb2

__all__ = ["ADVICE", "assemble", "findings_score", "risk_level", "sort_findings"]

ADVICE = {
    "plan.forbidden_operation": "Remove task {loc} or give it an operation the policy allows.",
    "plan.duplicate_task_id": "Give every task a unique id ({loc} is repeated).",
    "plan.empty_task_id": "Give {loc} an id.",
    "plan.unknown_dependency": "Make task {loc} depend only on tasks of the plan.",
    "plan.self_dependency": "Remove task {loc} from its own dependencies.",
    "plan.duplicate_dependency": "List each dependency of task {loc} once.",
    "plan.dependency_cycle": "Break the dependency cycle through task {loc}.",
    "plan.timeline_missing": "Schedule the plan (PlanningService.CreatePlan fills the timeline).",
    "plan.timeline_mismatch": "Regenerate the timeline so it has one entry per task.",
    "plan.timeline_order": "Reschedule task {loc} after its dependencies end.",
    "plan.timeline_duration": "Make the timeline of task {loc} match its estimate, or re-plan.",
    "plan.total_duration_mismatch": "Set total_duration_ms to the end of the last timeline entry.",
    "plan.critical_path_unknown_task": "Recompute the critical path (it names {loc}).",
    "plan.risk_score_mismatch": "Score risk {loc} as probability x impact.",
    "plan.too_many_tasks": "Split the plan or raise plan.max_tasks in policy.json.",
    "plan.task_resources_exceed": "Lower the requirements of task {loc} or raise the limits.",
    "plan.layer_resources_exceed": "Reduce parallelism in {loc} (goal max_parallel_tasks).",
    "plan.duration_exceeds_limit": "Shorten the critical path or raise max_total_duration_ms.",
    "plan.goal_duration_exceeded": "Shorten the critical path or relax the goal's max_duration_ms.",
    "plan.risk_elevated": "Apply the mitigation of risk {loc}.",
    "plan.risk_too_high": "Mitigate risk {loc} before running the plan.",
    "module.parse_error": "Rebuild the module; it is not valid WASM ({loc}).",
    "module.digest_mismatch": "Check the module bytes: they do not match the expected SHA-256.",
    "module.too_large": "Shrink the module (release build, strip, LTO) below the size limit.",
    "module.import_not_allowed": "Remove the import {loc} or add it to module.allowed_imports.",
    "module.memory_max_missing": "Declare a maximum for {loc} (e.g. -C link-arg=--max-memory=...).",
    "module.memory_exceeds_limit": "Lower the maximum of {loc} below module.max_memory_pages.",
    "module.missing_export": "Export {loc} from the module.",
}

_FAMILIES = (
    validation_pb2.CHECK_FAMILY_SAFETY,
    validation_pb2.CHECK_FAMILY_INTEGRITY,
    validation_pb2.CHECK_FAMILY_COMPLIANCE,
)


def sort_findings(findings: Sequence[CoreFinding]) -> list[CoreFinding]:
    """Most severe first, then by family; otherwise in the order found."""
    return sorted(findings, key=lambda f: (-f.severity, f.family))


def findings_score(findings: Sequence[CoreFinding]) -> float:
    """Risk of a set of findings, with the Rust core's weights (``findings::risk_score``):
    4.0 per critical safety finding, 2.5 per other critical finding, 1.0 per
    warning, capped at 5."""
    total = 0.0
    for f in findings:
        if f.severity == common_pb2.SEVERITY_CRITICAL:
            total += 4.0 if f.family == validation_pb2.CHECK_FAMILY_SAFETY else 2.5
        elif f.severity == common_pb2.SEVERITY_WARNING:
            total += 1.0
    return min(total, 5.0)


def risk_level(score: float) -> int:
    if score >= 4.0:
        return validation_pb2.RISK_LEVEL_CRITICAL
    if score >= 2.5:
        return validation_pb2.RISK_LEVEL_HIGH
    if score >= 1.0:
        return validation_pb2.RISK_LEVEL_MEDIUM
    return validation_pb2.RISK_LEVEL_LOW


def _status(findings: Sequence[CoreFinding], family: int) -> int:
    severities = {f.severity for f in findings if f.family == family}
    if common_pb2.SEVERITY_CRITICAL in severities:
        return validation_pb2.CHECK_STATUS_FAILED
    if common_pb2.SEVERITY_WARNING in severities:
        return validation_pb2.CHECK_STATUS_WARNING
    return validation_pb2.CHECK_STATUS_PASSED


def _recommendations(findings: Sequence[CoreFinding]) -> list[str]:
    out: list[str] = []
    for f in findings:
        text = ADVICE.get(f.rule, "Fix: {msg}").format(loc=f.location, msg=f.message)
        if text not in out:
            out.append(text)
    return out


def assemble(
    *,
    operation_type: int,
    subject_id: str,
    subject_sha256: str,
    findings: Sequence[CoreFinding],
    risk_score: float,
    risk_factors: Sequence[str],
    started: float,
    module_facts: validation_pb2.ModuleFacts | None = None,
) -> validation_pb2.ValidationResult:
    """The result, with a fresh verdict id; ``started`` is a ``time.perf_counter()`` value."""
    ordered = sort_findings(findings)
    safety, integrity, compliance = (_status(ordered, fam) for fam in _FAMILIES)
    failed = validation_pb2.CHECK_STATUS_FAILED
    validated_at = timestamp_pb2.Timestamp()
    validated_at.GetCurrentTime()
    score = min(max(risk_score, 0.0), 5.0)
    result = validation_pb2.ValidationResult(
        verdict_id=f"verdict-{uuid.uuid4().hex}",
        is_valid=failed not in (safety, integrity, compliance),
        safety_status=safety,
        integrity_status=integrity,
        compliance_status=compliance,
        risk_assessment=validation_pb2.RiskAssessment(
            level=risk_level(score), score=score, factors=list(risk_factors)
        ),
        recommendations=_recommendations(ordered),
        subject_sha256=subject_sha256,
        findings=[
            validation_pb2.Finding(
                rule=f.rule, family=f.family, severity=f.severity, message=f.message,
                location=f.location,
            )
            for f in ordered
        ],
        operation_type=operation_type,
        validated_at=validated_at,
        subject_id=subject_id,
    )
    if module_facts is not None:
        result.module_facts.CopyFrom(module_facts)
    result.validation_time_ms = (time.perf_counter() - started) * 1000.0
    return result
