"""Policy rules for plans.

Rule ids, family and severity (C = critical, makes the plan invalid;
W = warning):

* safety: ``plan.forbidden_operation`` (C) for a task whose ``operation``
  is on the policy's forbidden list;
* integrity: the dependency rules of the Rust core (``plan.duplicate_task_id``,
  ``plan.unknown_dependency``, ``plan.self_dependency``,
  ``plan.dependency_cycle``: C; ``plan.duplicate_dependency``: W), and the
  plan's own consistency: ``plan.timeline_missing`` (W),
  ``plan.timeline_mismatch`` (C: timeline and tasks disagree),
  ``plan.timeline_order`` (C: a task starts before a dependency ends),
  ``plan.timeline_duration`` (W: entry length differs from the estimate),
  ``plan.total_duration_mismatch`` (W), ``plan.critical_path_unknown_task`` (C),
  ``plan.risk_score_mismatch`` (W: a score is not probability x impact);
* compliance: ``plan.too_many_tasks``, ``plan.task_resources_exceed``,
  ``plan.layer_resources_exceed``, ``plan.duration_exceeds_limit``,
  ``plan.goal_duration_exceeded`` (C); ``plan.risk_elevated`` (W) and
  ``plan.risk_too_high`` (C) for plan risks scored at or above the policy's
  ``warn_risk_score`` / ``max_risk_score``.
"""

from __future__ import annotations

from collections.abc import Iterator

from chimera.validation.core import CoreFinding, ValidationCore
from chimera.validation.policy import PlanPolicy
from chimera.v1 import common_pb2, planning_pb2, validation_pb2

__all__ = ["check_plan"]

SAFETY = validation_pb2.CHECK_FAMILY_SAFETY
INTEGRITY = validation_pb2.CHECK_FAMILY_INTEGRITY
COMPLIANCE = validation_pb2.CHECK_FAMILY_COMPLIANCE
CRITICAL = common_pb2.SEVERITY_CRITICAL
WARNING = common_pb2.SEVERITY_WARNING


def _f(rule: str, family: int, severity: int, message: str, location: str) -> CoreFinding:
    return CoreFinding(rule, family, severity, message, location)


def check_plan(
    plan: planning_pb2.Plan, policy: PlanPolicy, core: ValidationCore
) -> list[CoreFinding]:
    """Every finding for ``plan``, in rule order (the caller sorts by severity)."""
    findings = list(_safety(plan, policy))
    findings += core.check_dependencies([(t.id, list(t.dependencies)) for t in plan.tasks])
    findings += _consistency(plan)
    findings += _compliance(plan, policy)
    return findings


def _safety(plan: planning_pb2.Plan, policy: PlanPolicy) -> Iterator[CoreFinding]:
    for t in plan.tasks:
        if t.operation and t.operation.lower() in policy.forbidden_operations:
            yield _f(
                "plan.forbidden_operation", SAFETY, CRITICAL,
                f"task {t.id!r} performs forbidden operation {t.operation!r}", t.id,
            )


def _consistency(plan: planning_pb2.Plan) -> Iterator[CoreFinding]:
    tasks = {t.id: t for t in plan.tasks}
    for tid in plan.critical_path:
        if tid not in tasks:
            yield _f(
                "plan.critical_path_unknown_task", INTEGRITY, CRITICAL,
                f"critical path names unknown task {tid!r}", tid,
            )
    for r in plan.risks:
        if abs(r.probability * r.impact - r.score) > 1e-6:
            yield _f(
                "plan.risk_score_mismatch", INTEGRITY, WARNING,
                f"risk {r.id!r} has score {r.score:g}, not probability x impact = "
                f"{r.probability * r.impact:g}", r.id,
            )
    if not plan.timeline:
        yield _f(
            "plan.timeline_missing", INTEGRITY, WARNING,
            "the plan has no timeline; schedule checks were skipped", "timeline",
        )
        return
    entries = {e.task_id: e for e in plan.timeline}
    missing = sorted(set(tasks) - set(entries))
    extra = sorted(set(entries) - set(tasks))
    if missing or extra or len(entries) != len(plan.timeline):
        yield _f(
            "plan.timeline_mismatch", INTEGRITY, CRITICAL,
            f"timeline and tasks disagree (no entry for {missing}, unknown entries {extra}, "
            f"{len(plan.timeline) - len(entries)} duplicates)", "timeline",
        )
        return
    for t in plan.tasks:
        e = entries[t.id]
        if e.end_offset_ms < e.start_offset_ms:
            yield _f("plan.timeline_order", INTEGRITY, CRITICAL,
                     f"task {t.id!r} ends before it starts", t.id)
            continue
        for dep in t.dependencies:
            d = entries.get(dep)
            if d is not None and e.start_offset_ms < d.end_offset_ms:
                yield _f(
                    "plan.timeline_order", INTEGRITY, CRITICAL,
                    f"task {t.id!r} starts at {e.start_offset_ms} ms, before its dependency "
                    f"{dep!r} ends at {d.end_offset_ms} ms", t.id,
                )
        length = e.end_offset_ms - e.start_offset_ms
        if length != t.estimated_duration_ms:
            yield _f(
                "plan.timeline_duration", INTEGRITY, WARNING,
                f"task {t.id!r} is scheduled for {length} ms but estimated at "
                f"{t.estimated_duration_ms} ms", t.id,
            )
    makespan = max(e.end_offset_ms for e in plan.timeline)
    if plan.total_duration_ms != makespan:
        yield _f(
            "plan.total_duration_mismatch", INTEGRITY, WARNING,
            f"total_duration_ms is {plan.total_duration_ms} but the timeline ends at {makespan}",
            "total_duration_ms",
        )


def _compliance(plan: planning_pb2.Plan, policy: PlanPolicy) -> Iterator[CoreFinding]:
    if policy.max_tasks and len(plan.tasks) > policy.max_tasks:
        yield _f(
            "plan.too_many_tasks", COMPLIANCE, CRITICAL,
            f"{len(plan.tasks)} tasks, more than the limit of {policy.max_tasks}", "tasks",
        )
    for t in plan.tasks:
        r = t.resource_requirements
        over = []
        if policy.max_task_cpu_cores and r.cpu_cores > policy.max_task_cpu_cores:
            over.append(f"cpu_cores {r.cpu_cores:g} > {policy.max_task_cpu_cores:g}")
        if policy.max_task_memory_bytes and r.memory_bytes > policy.max_task_memory_bytes:
            over.append(f"memory_bytes {r.memory_bytes} > {policy.max_task_memory_bytes}")
        if policy.max_task_gpu_count and r.gpu_count > policy.max_task_gpu_count:
            over.append(f"gpu_count {r.gpu_count} > {policy.max_task_gpu_count}")
        if over:
            yield _f(
                "plan.task_resources_exceed", COMPLIANCE, CRITICAL,
                f"task {t.id!r} exceeds the per-task limits: {'; '.join(over)}", t.id,
            )
    for a in plan.resource_allocations:
        p = a.peak_requirements
        over = []
        if policy.max_layer_cpu_cores and p.cpu_cores > policy.max_layer_cpu_cores:
            over.append(f"cpu_cores {p.cpu_cores:g} > {policy.max_layer_cpu_cores:g}")
        if policy.max_layer_memory_bytes and p.memory_bytes > policy.max_layer_memory_bytes:
            over.append(f"memory_bytes {p.memory_bytes} > {policy.max_layer_memory_bytes}")
        if over:
            known = a.layer in common_pb2.Layer.values()
            layer = common_pb2.Layer.Name(a.layer) if known else str(a.layer)
            yield _f(
                "plan.layer_resources_exceed", COMPLIANCE, CRITICAL,
                f"peak of {layer} exceeds the per-layer limits: {'; '.join(over)}", layer,
            )
    if policy.max_total_duration_ms and plan.total_duration_ms > policy.max_total_duration_ms:
        yield _f(
            "plan.duration_exceeds_limit", COMPLIANCE, CRITICAL,
            f"makespan {plan.total_duration_ms} ms exceeds the policy limit of "
            f"{policy.max_total_duration_ms} ms", "total_duration_ms",
        )
    goal_limit = plan.goal.constraints.max_duration_ms
    if goal_limit and plan.total_duration_ms > goal_limit:
        yield _f(
            "plan.goal_duration_exceeded", COMPLIANCE, CRITICAL,
            f"makespan {plan.total_duration_ms} ms exceeds the goal's max_duration_ms {goal_limit}",
            "goal.constraints.max_duration_ms",
        )
    for r in plan.risks:
        score = r.probability * r.impact
        if score >= policy.max_risk_score:
            yield _f(
                "plan.risk_too_high", COMPLIANCE, CRITICAL,
                f"risk {r.id!r} scores {score:g}, at or above the limit {policy.max_risk_score:g}: "
                f"{r.description}", r.id,
            )
        elif score >= policy.warn_risk_score:
            yield _f(
                "plan.risk_elevated", COMPLIANCE, WARNING,
                f"risk {r.id!r} scores {score:g} (warning from {policy.warn_risk_score:g}): "
                f"{r.description}", r.id,
            )
