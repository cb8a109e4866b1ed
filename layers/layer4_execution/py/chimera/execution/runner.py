"""Glue between scheduler, registry, sandbox and KPI hub (no gRPC here).

:func:`make_executor` is the scheduler's executor: it snapshots the active
version when the attempt starts (so a hot swap never changes a running task)
and runs it in the sandbox. :func:`completion_to_kpi` turns the scheduler's
completion record into the KPI record layer 5 consumes.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from chimera.execution.kpi import KpiRecord
from chimera.execution.registry import ModuleRegistry, Version
from chimera.execution.sandbox import ExecStatus, Limits, RunResult, Sandbox
from chimera.execution.scheduler import Attempt, CompletionRecord, TaskState, Verdict

#: Run statuses worth retrying. The others are deterministic for a given
#: (module, genome, input) -- same fuel, same trap -- so a retry would only
#: burn resources; a wall-clock deadline depends on host load and may pass.
DEFAULT_RETRYABLE: frozenset[ExecStatus] = frozenset({ExecStatus.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class TaskPayload:
    """What a submitted task carries (the service builds it from ``TaskSpec``)."""

    input: bytes
    agent_id: str = ""
    limits: Limits | None = None


@dataclass(frozen=True)
class ExecutionOutcome:
    """One attempt's result and the version it ran on."""

    version: Version
    result: RunResult

    @property
    def ok(self) -> bool:
        """True when the run succeeded."""
        return self.result.ok

    @property
    def status(self) -> ExecStatus:
        """The run status."""
        return self.result.status

    @property
    def message(self) -> str:
        """The run's failure message (empty when ok)."""
        return self.result.message


def make_executor(
    registry: ModuleRegistry, sandbox: Sandbox
) -> Callable[[Attempt], ExecutionOutcome]:
    """An executor that runs each attempt on the version active at its start."""

    def execute(attempt: Attempt) -> ExecutionOutcome:
        payload = attempt.payload
        if not isinstance(payload, TaskPayload):
            raise TypeError(f"payload must be TaskPayload, got {type(payload).__name__}")
        version = registry.active()  # the snapshot: immutable from here on
        result = sandbox.run(
            version.module, version.params, payload.input, payload.limits, attempt.cancel
        )
        return ExecutionOutcome(version, result)

    return execute


def make_classifier(
    retryable: Collection[ExecStatus] = DEFAULT_RETRYABLE,
) -> Callable[[object], Verdict]:
    """Scheduler ``classify`` for :class:`ExecutionOutcome` values."""

    def classify(value: object) -> Verdict:
        if not isinstance(value, ExecutionOutcome):
            return Verdict.RETRY
        if value.ok:
            return Verdict.SUCCESS
        return Verdict.RETRY if value.status in retryable else Verdict.FAIL

    return classify


def completion_to_kpi(record: CompletionRecord, agent_id: str | None = None) -> KpiRecord:
    """The KPI record for a finished task (one per task, whatever its end).

    ``agent_id`` defaults to the task payload's.
    """
    if agent_id is None:
        agent_id = record.payload.agent_id if isinstance(record.payload, TaskPayload) else ""
    outcome = record.value if isinstance(record.value, ExecutionOutcome) else None
    metrics: dict[str, float] = {"attempts": float(record.attempts)}
    if outcome is None:
        return KpiRecord(
            task_id=record.task_id,
            agent_id=agent_id,
            module_version="",
            latency_ms=0.0,
            fuel_consumed=0,
            memory_peak_bytes=0,
            status=record.state.value,
            metrics=metrics,
        )
    res = outcome.result
    if res.output is not None:
        metrics.update(res.output.metrics)
    terminal_run = record.state in (TaskState.SUCCEEDED, TaskState.FAILED)
    return KpiRecord(
        task_id=record.task_id,
        agent_id=agent_id,
        module_version=outcome.version.label,
        latency_ms=res.latency_ms,
        fuel_consumed=res.fuel_consumed,
        memory_peak_bytes=res.memory_peak_bytes,
        status=res.status.value if terminal_run else record.state.value,
        metrics=metrics,
    )
