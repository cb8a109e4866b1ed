"""Translations between the sandbox/scheduler types and the execution contract.

Kept apart from the servicer so every mapping (run status -> RunOutcome, task
state -> TaskStatus, finished attempt -> KPI record -> KpiReport) is one
small, testable function.
"""

from __future__ import annotations

import math
import time

from google.protobuf import timestamp_pb2

from chimera.execution.deployments import DeploymentView
from chimera.execution.kpi import KpiRecord
from chimera.execution.runner import AttemptOutcome, TaskPayload
from chimera.execution.sandbox import ExecStatus, RunResult
from chimera.execution.scheduler import Attempt, CompletionRecord, TaskSnapshot, TaskState
from chimera.wasm.guest import encode_result
from chimera.v1 import common_pb2, execution_pb2

__all__ = [
    "MAX_KPI_METRICS",
    "attempt_kpi",
    "deployment_to_proto",
    "kpi_to_proto",
    "run_kpi",
    "run_outcome",
    "task_record",
    "task_status",
    "timestamp",
]

#: KpiReport.metrics holds at most this many entries (contract rule).
MAX_KPI_METRICS = 64

#: How a sandbox status maps to the contract's RunOutcome. GUEST_ERROR is split
#: by :func:`run_outcome`; CANCELLED is an epoch interruption of a running guest.
_OUTCOMES: dict[ExecStatus, int] = {
    ExecStatus.OK: common_pb2.RUN_OUTCOME_SUCCESS,
    ExecStatus.TRAP: common_pb2.RUN_OUTCOME_TRAP,
    ExecStatus.FUEL_EXHAUSTED: common_pb2.RUN_OUTCOME_OUT_OF_FUEL,
    ExecStatus.MEMORY_LIMIT: common_pb2.RUN_OUTCOME_MEMORY_LIMIT,
    ExecStatus.DEADLINE_EXCEEDED: common_pb2.RUN_OUTCOME_DEADLINE_EXCEEDED,
    ExecStatus.CANCELLED: common_pb2.RUN_OUTCOME_DEADLINE_EXCEEDED,
    ExecStatus.GUEST_ERROR: common_pb2.RUN_OUTCOME_HOST_ERROR,
}

#: Scheduler states as contract statuses. FAILED (a deterministic failure that
#: a retry would only repeat: trap, fuel, memory) is dead-lettered at once.
_STATUSES: dict[TaskState, int] = {
    TaskState.QUEUED: common_pb2.TASK_STATUS_QUEUED,
    TaskState.RUNNING: common_pb2.TASK_STATUS_RUNNING,
    TaskState.RETRY_WAIT: common_pb2.TASK_STATUS_RETRY_WAIT,
    TaskState.SUCCEEDED: common_pb2.TASK_STATUS_SUCCEEDED,
    TaskState.FAILED: common_pb2.TASK_STATUS_DEAD_LETTERED,
    TaskState.DEAD_LETTERED: common_pb2.TASK_STATUS_DEAD_LETTERED,
    TaskState.CANCELLED: common_pb2.TASK_STATUS_CANCELLED,
}


def run_outcome(result: RunResult) -> int:
    """The RunOutcome of one sandboxed run.

    A guest that returns a non-OK ABI status ends its run deliberately (an
    explicit abort: TRAP); a guest that breaks the ABI (missing export, bad
    result record, wrong version) is a HOST_ERROR, as the contract lists.
    """
    if result.status is ExecStatus.GUEST_ERROR and result.guest_status not in (None, 0):
        return common_pb2.RUN_OUTCOME_TRAP
    return _OUTCOMES[result.status]


def outcome_name(outcome: int) -> str:
    """``RUN_OUTCOME_TRAP`` for the number of TRAP."""
    return common_pb2.RunOutcome.Name(outcome)


def task_status(state: TaskState) -> int:
    """The contract's TaskStatus for a scheduler state."""
    return _STATUSES[state]


def timestamp(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    """A Timestamp for a Unix time, or None."""
    if seconds is None:
        return None
    ts = timestamp_pb2.Timestamp()
    whole = math.floor(seconds)
    ts.seconds = int(whole)
    ts.nanos = min(int(round((seconds - whole) * 1e9)), 999_999_999)
    return ts


def task_record(
    view: TaskSnapshot | CompletionRecord, wall_offset: float
) -> execution_pb2.TaskRecord:
    """The contract's TaskRecord of a task the scheduler holds (a snapshot) or has
    dead-lettered (its completion record). Scheduler times are monotonic;
    ``wall_offset`` turns them into Unix time."""
    payload: TaskPayload = view.payload
    if isinstance(view, TaskSnapshot):
        last, error, ready_at = view.last_value, view.last_error, view.ready_at
    else:
        last, error, ready_at = view.value, view.error, None
    msg = execution_pb2.TaskRecord(
        spec=payload.spec,
        status=task_status(view.state),
        enqueued_at=timestamp(payload.enqueued_at),
        attempts=view.attempts,
        last_error=error,
    )
    if isinstance(last, AttemptOutcome):
        msg.last_outcome = run_outcome(last.result)
        msg.module_version = last.deployment.version if last.deployment else 0
        if last.result.ok and last.result.output is not None:
            msg.output = encode_result(last.result.output)
        if last.kpi is not None:
            msg.last_kpi.CopyFrom(kpi_to_proto(last.kpi))
    for name, value in (
        ("started_at", view.attempt_started_at),
        ("finished_at", view.finished_at),
        ("next_attempt_at", ready_at),
    ):
        if value is not None:
            getattr(msg, name).CopyFrom(timestamp(value + wall_offset))
    return msg


def from_timestamp(ts: timestamp_pb2.Timestamp) -> float:
    """Unix seconds of a Timestamp."""
    return ts.seconds + ts.nanos / 1e9


def attempt_kpi(attempt: Attempt, outcome: AttemptOutcome) -> KpiRecord:
    """The KPI record of one finished attempt (``status`` holds its RunOutcome name).

    Metrics: ``attempt`` (1 for the first try) and those of :func:`run_kpi`.
    """
    payload: TaskPayload = attempt.payload
    deployment = outcome.deployment
    return run_kpi(
        outcome.result,
        task_id=attempt.task_id,
        module_name=payload.module_name,
        module_version=deployment.version if deployment else 0,
        agent_id=payload.agent_id or (deployment.genome_agent_id if deployment else ""),
        genome_id=deployment.genome_id if deployment else "",
        metrics={"attempt": float(attempt.attempt)},
    )


def run_kpi(
    result: RunResult,
    *,
    task_id: str,
    module_name: str,
    module_version: int,
    agent_id: str,
    genome_id: str,
    metrics: dict[str, float],
) -> KpiRecord:
    """The KPI record of one sandboxed run (a task attempt or a batch pair).

    ``metrics`` (the caller's own, e.g. ``attempt``) come first, then the
    guest's metrics (cut to fit :data:`MAX_KPI_METRICS`), ``guest_status``
    when the guest returned a non-OK ABI status and ``cancelled`` when a
    cancel stopped the run.
    """
    merged = dict(metrics)
    if result.output is not None:
        for name, value in result.output.metrics.items():
            if len(merged) >= MAX_KPI_METRICS - 2:
                break
            merged.setdefault(name, value)
    if result.guest_status not in (None, 0):
        merged["guest_status"] = float(result.guest_status or 0)
    if result.status is ExecStatus.CANCELLED:
        merged["cancelled"] = 1.0
    return KpiRecord(
        task_id=task_id,
        agent_id=agent_id,
        module_version=str(module_version),
        latency_ms=result.latency_ms,
        fuel_consumed=result.fuel_consumed,
        memory_peak_bytes=result.memory_peak_bytes,
        status=outcome_name(run_outcome(result)),
        metrics=merged,
        recorded_at=time.time(),
        module_name=module_name,
        genome_id=genome_id,
    )


def kpi_to_proto(record: KpiRecord) -> common_pb2.KpiReport:
    """The KpiReport for a published KPI record (``status`` holds a RunOutcome name)."""
    return common_pb2.KpiReport(
        task_id=record.task_id,
        agent_id=record.agent_id,
        module_version=int(record.module_version or 0),
        latency_ms=record.latency_ms,
        fuel_consumed=record.fuel_consumed,
        memory_peak_bytes=record.memory_peak_bytes,
        status=common_pb2.RunOutcome.Value(record.status),
        metrics=dict(record.metrics),
        recorded_at=timestamp(record.recorded_at),
        module_name=record.module_name,
        genome_id=record.genome_id,
    )


def deployment_to_proto(view: DeploymentView) -> execution_pb2.Deployment:
    """The contract's Deployment for a stored deployment and its slot state."""
    dep = view.deployment
    msg = execution_pb2.Deployment(
        module_name=dep.module_name,
        version=dep.version,
        module_sha256=dep.module_sha256,
        verdict_id=dep.verdict_id,
        deployed_at=timestamp(dep.deployed_at),
        active=view.active,
        previous_version=view.previous_version,
    )
    if isinstance(dep.genome, common_pb2.AgentGenome):
        msg.genome.CopyFrom(dep.genome)
    return msg
