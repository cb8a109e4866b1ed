"""Layer 4's tasks: ``SubmitTask``, ``GetTask``, ``CancelTask`` and ``ListDeadLetters``
in domain terms, on the priority :class:`~chimera.execution.scheduler.Scheduler`.

The scheduler owns every task's state (its spec and submission time in the
payload, attempts, last outcome, retention and dead letters); :class:`Tasks`
adds what a task means to this layer:

* A submission is resolved against the deployment store and its entrypoint
  checked, so a task that could never run is refused at once, and a task id
  already known returns that task's handle (submissions are idempotent).
* Each attempt runs through :func:`~chimera.execution.runner.make_executor`
  (it resolves its deployment when it starts, so a hot swap never changes a
  running task); its KPI record is published to the hub by the worker that
  ran it and kept with the outcome for ``GetTask``.
* A deterministic failure (trap, fuel, memory, guest error) is dead-lettered
  at once, since a retry would only repeat it; a wall-clock deadline depends
  on load and is retried (:func:`~chimera.execution.runner.classify`).
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
import uuid

from chimera.execution.convert import attempt_kpi, task_record, task_status, timestamp
from chimera.execution.deployments import (
    Deployment, DeploymentStore, NoActiveDeployment, VersionNotFound,
)
from chimera.execution.kpi import KpiHub
from chimera.execution.metrics import ExecutionMetrics
from chimera.execution.options import ExecutionOptions
from chimera.execution.runner import AttemptOutcome, TaskPayload, classify, make_executor
from chimera.execution.sandbox import RUN_EXPORT, Sandbox, has_entrypoint
from chimera.execution.scheduler import (
    Attempt, CompletionRecord, DuplicateTask, QueueFull, Scheduler, SchedulerClosed, TaskSnapshot,
)
from chimera.framework import (
    FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unavailable,
)
from chimera.v1 import common_pb2, execution_pb2

__all__ = ["Tasks"]


class Tasks:
    """Submits, reports and cancels the layer's tasks; :meth:`close` cancels the rest."""

    def __init__(
        self,
        options: ExecutionOptions,
        store: DeploymentStore,
        sandbox: Sandbox,
        hub: KpiHub,
        metrics: ExecutionMetrics,
    ) -> None:
        self._options = options
        self._store = store
        self._hub = hub
        self._metrics = metrics
        self._run_attempt = make_executor(store, sandbox)
        # Scheduler times are monotonic; reports use Unix time. A fixed offset
        # keeps the order of scheduler events in the converted timestamps.
        self._wall_offset = time.time() - time.monotonic()
        self._submit_lock = threading.Lock()  # one task per id, even for concurrent submits
        self.scheduler = Scheduler(
            self._execute,
            concurrency=options.concurrency,
            max_queue=options.max_queue,
            retry=options.retry,
            classify=classify,
            on_complete=self._on_complete,
            retain_finished=options.retain_finished,
            max_dead_letters=options.max_dead_letters,
            dead_letter_failed=True,
        )

    def submit(self, request: execution_pb2.TaskSpec) -> execution_pb2.TaskHandle:
        """Queues the task (or returns the handle of the known task with its id)."""
        limits = self._options.limits(request.limits if request.HasField("limits") else None)
        max_retries = request.max_retries if request.HasField("max_retries") else None
        with self._submit_lock:
            if request.task_id:
                known = self.scheduler.snapshot(request.task_id)
                if known is not None:  # idempotent: the existing task's handle
                    return self._handle(known)
            deployment = self._resolve(request)
            entrypoint = request.entrypoint or RUN_EXPORT
            if request.entrypoint and not has_entrypoint(deployment.module.module, entrypoint):
                raise InvalidArgument(
                    "entrypoint",
                    f"must name a function exported by {request.module_name} "
                    f"v{deployment.version} with chimera_run's signature (4 i32 -> i32)",
                )
            spec = execution_pb2.TaskSpec()
            spec.CopyFrom(request)
            if not spec.task_id:
                spec.task_id = uuid.uuid4().hex
            payload = TaskPayload(
                module_name=request.module_name,
                version=request.module_version,
                entrypoint=entrypoint,
                input=bytes(request.input),
                limits=limits,
                agent_id=request.agent_id,
                spec=spec,
                enqueued_at=time.time(),
            )
            priority = request.priority or common_pb2.PRIORITY_NORMAL
            try:
                self.scheduler.submit(
                    spec.task_id, payload, priority=priority, max_retries=max_retries
                )
            except (DuplicateTask, ValueError) as exc:  # the checks above make this rare
                raise InvalidArgument("task_id", f"cannot be submitted now: {exc}") from None
            except QueueFull as exc:
                raise ResourceExhausted(f"the task queue is full: {exc}") from None
            except SchedulerClosed:
                raise Unavailable("the execution service is shutting down") from None
            handle = self._handle(self._snapshot(spec.task_id))
        self.refresh_load()
        return handle

    def get(self, task_id: str) -> execution_pb2.TaskRecord:
        """The task's record; NOT_FOUND when unknown or no longer retained."""
        return task_record(self._snapshot(task_id), self._wall_offset)

    def cancel(self, task_id: str) -> execution_pb2.TaskRecord:
        """Cancels a waiting or running task; the record after a short wait for its end."""
        handle = self.scheduler.handle(task_id)
        if handle is None:
            raise _unknown_task(task_id)
        if self.scheduler.cancel(task_id, "cancelled by CancelTask"):
            # A running attempt stops at its next epoch tick; wait briefly so
            # the reply usually shows the terminal status.
            try:
                handle.wait(self._options.cancel_wait_seconds)
            except TimeoutError:
                pass
        return task_record(self._snapshot(task_id), self._wall_offset)

    def dead_letters(self, limit: int) -> list[execution_pb2.TaskRecord]:
        """The newest ``limit`` dead-lettered tasks, newest first."""
        newest_first = reversed(self.scheduler.dead_letters())
        return [task_record(r, self._wall_offset) for r in itertools.islice(newest_first, limit)]

    def refresh_load(self) -> None:
        """Sets the load gauges from the scheduler and the store (after any change)."""
        self._metrics.set_load(self.scheduler.stats(), self._store.active_count())

    def close(self) -> None:
        """Cancels queued and running tasks and stops the workers."""
        self.scheduler.shutdown(cancel_pending=True, timeout=10.0)

    # -- scheduler callbacks (worker threads) ------------------------------------

    def _execute(self, attempt: Attempt) -> AttemptOutcome:
        self.refresh_load()
        outcome = self._run_attempt(attempt)
        record = attempt_kpi(attempt, outcome)
        self._metrics.attempt_finished(outcome.result)
        self._hub.publish(record)
        return dataclasses.replace(outcome, kpi=record)  # the scheduler keeps it for GetTask

    def _on_complete(self, record: CompletionRecord) -> None:
        self._metrics.task_finished(record)
        self.refresh_load()

    # -- helpers ---------------------------------------------------------------

    def _resolve(self, request: execution_pb2.TaskSpec) -> Deployment:
        """The deployment the task would run on now; the refusal says which field to change."""
        try:
            return self._store.resolve(request.module_name, request.module_version)
        except VersionNotFound as exc:
            raise NotFound(f"module_version: {exc}") from None
        except NoActiveDeployment as exc:
            raise FailedPrecondition(
                f"{exc}; activate one (DeployModule activate=true or DeployGenome) "
                "or pin module_version"
            ) from None

    def _snapshot(self, task_id: str) -> TaskSnapshot:
        snap = self.scheduler.snapshot(task_id)
        if snap is None:
            raise _unknown_task(task_id)
        return snap

    def _handle(self, snap: TaskSnapshot) -> execution_pb2.TaskHandle:
        return execution_pb2.TaskHandle(
            task_id=snap.task_id,
            status=task_status(snap.state),
            enqueued_at=timestamp(snap.payload.enqueued_at),
            queue_depth=self.scheduler.stats()["waiting"],
        )


def _unknown_task(task_id: str) -> NotFound:
    return NotFound(f"no task {task_id!r} (unknown, or finished and no longer retained)")
