"""One attempt of a task: its payload, the executor that runs it, the verdict.

The service's scheduler runs every task through these (no gRPC here).
:func:`make_executor` resolves the task's deployment in the
:class:`~chimera.execution.deployments.DeploymentStore` when each attempt
*starts* and runs it to the end on that immutable snapshot, so a hot swap or
rollback never changes a running task. :func:`classify` decides, from the
outcome, whether the scheduler retries. ``convert.attempt_kpi`` turns an
outcome into the attempt's KPI record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chimera.execution.deployments import Deployment, DeploymentStore
from chimera.execution.kpi import KpiRecord
from chimera.execution.sandbox import RUN_EXPORT, ExecStatus, Limits, RunResult, Sandbox
from chimera.execution.scheduler import Attempt, Verdict

__all__ = [
    "DEFAULT_RETRYABLE",
    "AttemptOutcome",
    "TaskPayload",
    "classify",
    "make_executor",
]

#: Run statuses worth retrying. The others are deterministic for a given
#: (module, genome, input) -- same fuel, same trap -- so a retry would only
#: burn resources; a wall-clock deadline depends on host load and may pass.
DEFAULT_RETRYABLE: frozenset[ExecStatus] = frozenset({ExecStatus.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class TaskPayload:
    """What the scheduler carries for one task (the service builds it from ``TaskSpec``)."""

    module_name: str
    version: int = 0  # 0 = the active deployment when each attempt starts
    entrypoint: str = RUN_EXPORT
    input: bytes = b""
    limits: Limits | None = None  # None: the sandbox's default limits
    agent_id: str = ""
    spec: Any = None  # the contract's TaskSpec as submitted (task_id filled in)
    enqueued_at: float = 0.0  # Unix time of the submission


@dataclass(frozen=True)
class AttemptOutcome:
    """An attempt's deployment and sandbox result (ok/status/message serve the scheduler),
    and the KPI record the service published for it."""

    deployment: Deployment | None
    result: RunResult
    kpi: KpiRecord | None = None

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


def classify(value: object) -> Verdict:
    """Scheduler ``classify``: success, a retry (:data:`DEFAULT_RETRYABLE`) or a failure."""
    if not isinstance(value, AttemptOutcome):
        return Verdict.RETRY
    if value.ok:
        return Verdict.SUCCESS
    return Verdict.RETRY if value.status in DEFAULT_RETRYABLE else Verdict.FAIL


def make_executor(store: DeploymentStore, sandbox: Sandbox) -> Callable[[Attempt], AttemptOutcome]:
    """The scheduler's executor: each attempt runs on the deployment it resolves at its start.

    A deployment that cannot be resolved (the service checks at submit, so
    this cannot happen there) is a ``GUEST_ERROR`` outcome with no deployment.
    """

    def execute(attempt: Attempt) -> AttemptOutcome:
        payload: TaskPayload = attempt.payload
        try:
            deployment = store.resolve(payload.module_name, payload.version)
        except (LookupError, RuntimeError) as exc:
            return AttemptOutcome(
                None, RunResult(ExecStatus.GUEST_ERROR, str(exc), None, 0, 0, 0.0, "")
            )
        result = sandbox.run(
            deployment.module,
            deployment.params,
            payload.input,
            payload.limits,
            attempt.cancel,
            entrypoint=payload.entrypoint,
        )
        return AttemptOutcome(deployment, result)

    return execute
