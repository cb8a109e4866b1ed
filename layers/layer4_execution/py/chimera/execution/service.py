"""The Execution gRPC service (execution.proto) on the shared framework.

``ExecutionServicer`` wires the layer-4 core together:

* ``DeployModule`` validates the bytes in the sandbox's engine (magic,
  structure, import allow-list, ABI exports -> INVALID_ARGUMENT on ``wasm``),
  then asks the :mod:`~chimera.execution.gate` for a layer-3 verdict on their
  exact SHA-256, then stores the compiled module in its slot.
* ``DeployGenome`` / ``RollbackGenome`` / ``ListVersions`` are the
  :class:`~chimera.execution.deployments.DeploymentStore`; activation is one
  reference change under a lock, and each attempt resolves its deployment
  when it starts, so a hot swap never changes a running task.
* ``SubmitTask`` / ``GetTask`` / ``CancelTask`` / ``ListDeadLetters`` are the
  priority :class:`~chimera.execution.scheduler.Scheduler` (bounded queue ->
  RESOURCE_EXHAUSTED, worker pool = concurrency limit, retries with backoff,
  dead letters). A deterministic failure (trap, fuel, memory, guest error) is
  dead-lettered at once: a retry would only repeat it. Wall-clock deadlines
  depend on load and are retried.
* ``EvaluateBatch`` runs one module with many genomes x inputs directly in
  the sandbox (:mod:`~chimera.execution.batch`, not the task queue) on at
  most ``concurrency`` threads and publishes each pair's report like a task's.
* ``StreamKpis`` gives each stream its own bounded
  :class:`~chimera.execution.kpi.KpiHub` subscription: publishing never
  blocks execution, and reports a slow stream cannot take are dropped for
  that stream only and counted in ``layer4_kpi_drops_total``.

One KPI report is published per finished attempt, from the worker that ran
it, and per batch pair, when its batch ends.

The servicer maps RPCs and holds no task or KPI state of its own: a task's
spec, attempts, last outcome and dead letter live in the scheduler (its
payload and snapshots), KPI history, stream caps and drop counting in the
hub; :mod:`~chimera.execution.convert` turns them into the contract's messages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc

from chimera.execution.batch import (
    DEFAULT_BATCH_TIMEOUT_MS, check_batch_entrypoint, check_batch_size, evaluate_batch,
)
from chimera.execution.cancel import CancelToken
from chimera.execution.convert import (
    attempt_kpi, deployment_to_proto, from_timestamp, kpi_to_proto, outcome_name, run_outcome,
    task_record, task_status, timestamp,
)
from chimera.execution.deployment_record import DeploymentRecord
from chimera.execution.deployments import (
    Deployment, DeploymentStore, DeploymentView, ModuleNotInSlot, NoActiveDeployment,
    NothingToRollBack, SlotNotFound, VersionConflict, VersionNotFound,
)
from chimera.execution.gate import ModuleGate
from chimera.execution.kpi import HubClosed, KpiHub, KpiRecord, TooManySubscribers
from chimera.execution.metrics import ExecutionMetrics
from chimera.execution.options import ExecutionOptions
from chimera.execution.runner import AttemptOutcome, TaskPayload, classify, make_executor
from chimera.execution.sandbox import RUN_EXPORT, InvalidModule, Sandbox, has_entrypoint
from chimera.execution.scheduler import (
    Attempt, CompletionRecord, DuplicateTask, QueueFull, Scheduler, SchedulerClosed, TaskSnapshot,
)
from chimera.framework import (
    Aborted, FailedPrecondition, InvalidArgument, MetricsRegistry, NotFound, ResourceExhausted,
    Unavailable,
)
from chimera.v1 import common_pb2, execution_pb2, execution_pb2_grpc

__all__ = ["SERVICE_NAME", "ExecutionServicer"]

_log = logging.getLogger("chimera.execution.service")

SERVICE_NAME = "chimera.v1.ExecutionService"
DEFAULT_LIST_LIMIT = 100
_MAX_LABEL_KEY = 128
_MAX_LABEL_VALUE = 1024


class ExecutionServicer(execution_pb2_grpc.ExecutionServiceServicer):
    """Implements every ExecutionService RPC; call :meth:`close` when done."""

    def __init__(
        self,
        options: ExecutionOptions,
        gate: ModuleGate,
        registry: MetricsRegistry,
    ) -> None:
        self.options = options
        self.gate = gate
        self.metrics = ExecutionMetrics(registry)
        self.sandbox = Sandbox(
            tick_ms=options.tick_ms,
            cache_dir=options.cache_dir,
            default_limits=options.default_limits,
        )
        # With --state-dir the store records every change and a restart resumes each slot.
        self.store = (
            DeploymentStore.recorded(DeploymentRecord(options.state_dir), self.sandbox.compile)
            if options.state_dir
            else DeploymentStore()
        )
        self._run_attempt = make_executor(self.store, self.sandbox)
        self.hub = KpiHub(
            options.kpi_buffer,
            retain=options.kpi_retained,
            max_subscribers=options.max_kpi_streams,
            on_drop=self.metrics.kpi_drops.inc,
        )
        # Scheduler times are monotonic; reports use Unix time. A fixed offset
        # keeps the order of scheduler events in the converted timestamps.
        self._wall_offset = time.time() - time.monotonic()
        self._submit_lock = threading.Lock()  # one task per id, even for concurrent submits
        self._lock = threading.Lock()
        self._batches: set[CancelToken] = set()  # running batches, cancelled by close()
        self._closed = False
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

    # -- lifecycle ---------------------------------------------------------

    def end_streams(self) -> None:
        """Ends every open StreamKpis stream and refuses new ones (first step of a shutdown)."""
        self.hub.close()

    def close(self) -> None:
        """Ends streams, cancels queued and running tasks, stops the sandbox. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            batches = list(self._batches)
        for token in batches:
            token.cancel("the execution service is shutting down")
        self.end_streams()
        self.scheduler.shutdown(cancel_pending=True, timeout=10.0)
        self.sandbox.close()
        self.gate.close()

    # -- deployments -------------------------------------------------------

    def DeployModule(
        self, request: execution_pb2.DeployModuleRequest, context: grpc.ServicerContext
    ) -> execution_pb2.Deployment:
        try:
            compiled = self.sandbox.compile(request.wasm)
        except InvalidModule as exc:
            raise InvalidArgument("wasm", f"is not an acceptable module: {exc.reason}") from None
        try:
            self.gate.admit(request.module_name, compiled.digest, request.verdict_id)
        except BaseException:
            if not self.store.uses_module(compiled.digest):
                self.sandbox.modules.discard(compiled.digest)  # refused bytes hold no memory
            raise
        view = self.store.add_module(
            request.module_name,
            compiled,
            request.verdict_id,
            activate=request.activate,
            wasm=request.wasm,
        )
        return self._deployed(
            "module",
            view,
            "deployed module %s v%d sha256=%s verdict=%s active=%s",
            request.module_name,
            view.deployment.version,
            compiled.digest,
            request.verdict_id,
            view.active,
        )

    def DeployGenome(
        self, request: execution_pb2.DeployGenomeRequest, context: grpc.ServicerContext
    ) -> execution_pb2.Deployment:
        genome = request.genome
        names = len(genome.parameter_names)
        if names and names != len(genome.parameters):
            raise InvalidArgument(
                "genome.parameter_names",
                f"must be empty or name each of the {len(genome.parameters)} parameters "
                f"(got {names} names)",
            )
        stored = common_pb2.AgentGenome()
        stored.CopyFrom(genome)
        with _store_errors():
            view = self.store.deploy_genome(
                request.module_name,
                genome.parameters,
                genome_id=genome.id,
                genome_agent_id=genome.agent_id,
                genome=stored,
                module_sha256=request.module_sha256,
                expected_active_version=request.expected_active_version,
            )
        return self._deployed(
            "genome",
            view,
            "deployed genome %r on %s v%d (previous v%d)",
            genome.id,
            request.module_name,
            view.deployment.version,
            view.previous_version,
        )

    def RollbackGenome(
        self, request: execution_pb2.RollbackGenomeRequest, context: grpc.ServicerContext
    ) -> execution_pb2.Deployment:
        with _store_errors():
            view = self.store.rollback(request.module_name, request.to_version)
        return self._deployed(
            "rollback", view, "rolled %s back to v%d", request.module_name, view.deployment.version
        )

    def ListVersions(
        self, request: execution_pb2.ListVersionsRequest, context: grpc.ServicerContext
    ) -> execution_pb2.ListVersionsResponse:
        with _store_errors():
            views, active = self.store.list(
                request.module_name, request.limit or DEFAULT_LIST_LIMIT
            )
        return execution_pb2.ListVersionsResponse(
            deployments=[deployment_to_proto(v) for v in views], active_version=active
        )

    # -- tasks ---------------------------------------------------------------

    def SubmitTask(
        self, request: execution_pb2.TaskSpec, context: grpc.ServicerContext
    ) -> execution_pb2.TaskHandle:
        _check_labels(request.labels)
        limits = self.options.limits(request.limits if request.HasField("limits") else None)
        max_retries = request.max_retries if request.HasField("max_retries") else None
        with self._submit_lock:
            if request.task_id:
                known = self.scheduler.snapshot(request.task_id)
                if known is not None:  # idempotent: the existing task's handle
                    return self._handle(known)
            deployment = self._resolve_for_submit(request)
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
        self._refresh_gauges()
        return handle

    def GetTask(
        self, request: execution_pb2.GetTaskRequest, context: grpc.ServicerContext
    ) -> execution_pb2.TaskRecord:
        return task_record(self._snapshot(request.task_id), self._wall_offset)

    def CancelTask(
        self, request: execution_pb2.CancelTaskRequest, context: grpc.ServicerContext
    ) -> execution_pb2.TaskRecord:
        handle = self.scheduler.handle(request.task_id)
        if handle is None:
            raise _unknown_task(request.task_id)
        if self.scheduler.cancel(request.task_id, "cancelled by CancelTask"):
            # A running attempt stops at its next epoch tick; wait briefly so
            # the reply usually shows the terminal status.
            try:
                handle.wait(self.options.cancel_wait_seconds)
            except TimeoutError:
                pass
        return task_record(self._snapshot(request.task_id), self._wall_offset)

    def ListDeadLetters(
        self, request: execution_pb2.ListDeadLettersRequest, context: grpc.ServicerContext
    ) -> execution_pb2.ListDeadLettersResponse:
        newest_first = reversed(self.scheduler.dead_letters())
        limit = request.limit or DEFAULT_LIST_LIMIT
        return execution_pb2.ListDeadLettersResponse(
            tasks=[task_record(r, self._wall_offset) for r in itertools.islice(newest_first, limit)]
        )

    # -- KPI stream ------------------------------------------------------------

    def StreamKpis(
        self, request: execution_pb2.StreamKpisRequest, context: grpc.ServicerContext
    ) -> Iterator[common_pb2.KpiReport]:
        since = from_timestamp(request.since) if request.HasField("since") else None
        try:
            sub, backlog = self.hub.subscribe_since(since, self.options.kpi_buffer)
        except HubClosed:
            raise Unavailable("the execution service is shutting down") from None
        except TooManySubscribers as exc:
            raise ResourceExhausted(
                f"{exc.open_now} KPI streams are open (limit {exc.limit}); "
                "close one or filter a shared stream"
            ) from None
        context.add_callback(sub.close)  # a cancelled stream wakes its reader at once
        self.metrics.kpi_streams.inc()

        def wanted(rec: KpiRecord) -> bool:
            return (not request.module_name or rec.module_name == request.module_name) and (
                not request.agent_id or rec.agent_id == request.agent_id
            )

        try:
            for old in backlog:
                if wanted(old):
                    yield kpi_to_proto(old)
            while context.is_active():
                live = sub.get(timeout=0.25)
                if live is None:
                    if sub.closed:
                        break
                    continue
                if wanted(live):
                    yield kpi_to_proto(live)
        finally:
            sub.close()
            self.metrics.kpi_streams.dec()
            if sub.dropped:
                _log.warning("StreamKpis subscriber dropped %d reports (slow reader)", sub.dropped)

    # -- batched evaluation ----------------------------------------------------

    def EvaluateBatch(
        self, request: execution_pb2.EvaluateBatchRequest, context: grpc.ServicerContext
    ) -> execution_pb2.EvaluateBatchResponse:
        check_batch_size(request)
        limits = self.options.limits(request.limits if request.HasField("limits") else None)
        with _store_errors():
            source = self.store.module_source(request.module_name, request.module_sha256)
        entrypoint = check_batch_entrypoint(request, source)
        timeout_ms = request.batch_timeout_ms or DEFAULT_BATCH_TIMEOUT_MS
        token = CancelToken(time.monotonic() + timeout_ms / 1000.0)
        context.add_callback(lambda: token.cancel("the caller cancelled the batch"))
        with self._lock:
            if self._closed:
                raise Unavailable("the execution service is shutting down")
            self._batches.add(token)
        try:
            response, records = evaluate_batch(
                self.sandbox, source, request, limits, token,
                workers=self.options.concurrency, entrypoint=entrypoint,
            )  # fmt: skip
        finally:
            with self._lock:
                self._batches.discard(token)
        for record in records:
            self._publish(record)
        for report in response.reports:
            label = outcome_name(report.status).removeprefix("RUN_OUTCOME_").lower()
            self.metrics.batch_pairs.labels(outcome=label).inc()
        _log.info(
            "batch %s on %s v%d: %d pairs, %d succeeded, %.1f ms",
            response.batch_id,
            request.module_name,
            source.version,
            len(records),
            response.succeeded,
            response.wall_ms,
        )
        return response

    # -- scheduler callbacks (worker threads) ------------------------------------

    def _execute(self, attempt: Attempt) -> AttemptOutcome:
        self._refresh_gauges()
        outcome = self._run_attempt(attempt)
        record = attempt_kpi(attempt, outcome)
        label = outcome_name(run_outcome(outcome.result)).removeprefix("RUN_OUTCOME_").lower()
        self.metrics.attempts.labels(outcome=label).inc()
        self.metrics.attempt_seconds.labels(outcome=label).observe(outcome.result.latency_ms / 1000.0)
        self._publish(record)
        return dataclasses.replace(outcome, kpi=record)  # the scheduler keeps it for GetTask

    def _on_complete(self, record: CompletionRecord) -> None:
        status = task_status(record.state)
        label = common_pb2.TaskStatus.Name(status).removeprefix("TASK_STATUS_").lower()
        self.metrics.tasks.labels(status=label).inc()
        self.metrics.task_latency.labels(status=label).observe(
            max(record.finished_at - record.submitted_at, 0.0)
        )
        self._refresh_gauges()

    # -- helpers ---------------------------------------------------------------

    def _deployed(
        self, kind: str, view: DeploymentView, message: str, *args: object
    ) -> execution_pb2.Deployment:
        """Counts and logs a deployment change (``kind``); returns it as the contract's message."""
        self.metrics.deployments.labels(kind=kind).inc()
        self._refresh_gauges()
        _log.info(message, *args)
        return deployment_to_proto(view)

    def _publish(self, record: KpiRecord) -> None:
        self.hub.publish(record)
        self.metrics.kpi_published.inc()

    def _refresh_gauges(self) -> None:
        stats = self.scheduler.stats()
        self.metrics.queue_depth.set(stats["waiting"])
        self.metrics.running.set(stats["running"])
        self.metrics.active_modules.set(self.store.active_count())

    def _resolve_for_submit(self, request: execution_pb2.TaskSpec) -> Deployment:
        try:
            return self.store.resolve(request.module_name, request.module_version)
        except SlotNotFound as exc:
            raise NotFound(str(exc)) from None
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


@contextlib.contextmanager
def _store_errors() -> Iterator[None]:
    """Maps the deployment store's refusals to gRPC statuses, with the store's message."""
    try:
        yield
    except VersionConflict as exc:
        raise Aborted(str(exc)) from None
    except (SlotNotFound, VersionNotFound, ModuleNotInSlot) as exc:
        raise NotFound(str(exc)) from None
    except (NoActiveDeployment, NothingToRollBack) as exc:
        raise FailedPrecondition(str(exc)) from None


def _check_labels(labels: Any) -> None:
    for key, value in labels.items():
        if not key or len(key) > _MAX_LABEL_KEY:
            raise InvalidArgument("labels", f"keys must be 1..{_MAX_LABEL_KEY} characters")
        if len(value) > _MAX_LABEL_VALUE:
            raise InvalidArgument(
                f"labels[{key}]", f"must be at most {_MAX_LABEL_VALUE} characters"
            )
