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
"""

from __future__ import annotations

import collections
import contextlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from chimera.wasm.guest import encode_params, encode_result
from chimera.execution.batch import (
    DEFAULT_BATCH_TIMEOUT_MS,
    MAX_BATCH_INPUT_BYTES,
    MAX_BATCH_PAIRS,
    run_pairs,
)
from chimera.execution.cancel import CancelToken
from chimera.execution.convert import (
    attempt_kpi,
    deployment_to_proto,
    from_timestamp,
    kpi_to_proto,
    outcome_name,
    run_kpi,
    run_outcome,
    task_status,
    timestamp,
)
from chimera.execution.deployment_record import DeploymentRecord
from chimera.execution.deployments import (
    Deployment,
    DeploymentStore,
    DeploymentView,
    ModuleNotInSlot,
    NoActiveDeployment,
    NothingToRollBack,
    SlotNotFound,
    VersionConflict,
    VersionNotFound,
)
from chimera.execution.gate import ModuleGate, Unavailable
from chimera.execution.kpi import KpiHub, KpiRecord, Subscription
from chimera.execution.runner import AttemptOutcome, TaskPayload, classify, make_executor
from chimera.execution.sandbox import (
    RUN_EXPORT,
    WASM_PAGE,
    InvalidModule,
    Limits,
    Sandbox,
    has_entrypoint,
)
from chimera.execution.scheduler import (
    Attempt,
    CompletionRecord,
    DuplicateTask,
    QueueFull,
    RetryPolicy,
    Scheduler,
    SchedulerClosed,
    TaskHandle,
    TaskSnapshot,
    TaskState,
)
from chimera.framework import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    MetricsRegistry,
    NotFound,
    ResourceExhausted,
    ServiceError,
)
from chimera.v1 import common_pb2, execution_pb2, execution_pb2_grpc

__all__ = ["ExecutionMetrics", "ExecutionOptions", "ExecutionServicer"]

_log = logging.getLogger("chimera.execution.service")

SERVICE_NAME = "chimera.v1.ExecutionService"
DEFAULT_LIST_LIMIT = 100
_SLOT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MAX_LABEL_KEY = 128
_MAX_LABEL_VALUE = 1024
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip


@dataclass(frozen=True)
class ExecutionOptions:
    """How the service runs tasks (the CLI flags of ``server.py`` fill these).

    ``default_limits`` apply to zero members of a task's ``limits``;
    ``max_limits`` are the largest a caller may ask for. ``retry`` is the
    backoff (1 s x 2^n, capped at 300 s) and the default retry count.
    Each open KPI stream holds a server thread, so ``max_kpi_streams`` must
    stay below the server's ``max_workers`` to leave threads for unary RPCs.
    """

    concurrency: int = 2
    max_queue: int = 10_000
    default_limits: Limits = Limits()
    max_limits: Limits = Limits(
        fuel=1_000_000_000_000, memory_bytes=4 * 1024**3, timeout_ms=600_000.0
    )
    retry: RetryPolicy = RetryPolicy()
    tick_ms: float = 5.0
    cache_dir: str | None = None
    #: Where the deployment record lives (modules and slots); None = in memory only.
    state_dir: str | None = None
    kpi_buffer: int = 1024
    max_kpi_streams: int = 16
    kpi_retained: int = 10_000
    retain_finished: int = 10_000
    max_dead_letters: int = 10_000
    cancel_wait_seconds: float = 0.5

    def __post_init__(self) -> None:
        if min(self.concurrency, self.max_queue, self.kpi_buffer, self.max_kpi_streams) < 1:
            raise ValueError("concurrency, max_queue, kpi_buffer and max_kpi_streams must be >= 1")
        if self.kpi_retained < 0 or self.retain_finished < 1 or self.max_dead_letters < 1:
            raise ValueError("kpi_retained must be >= 0; retain_finished, max_dead_letters >= 1")
        d, m = self.default_limits, self.max_limits
        if d.fuel > m.fuel or d.memory_bytes > m.memory_bytes or d.timeout_ms > m.timeout_ms:
            raise ValueError(f"default limits {d} exceed the maximum limits {m}")


class ExecutionMetrics:
    """The ``layer4_*`` Prometheus metrics, registered on the server's registry."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.tasks = registry.counter(
            "layer4_tasks_total", "Tasks that reached a terminal status, by status.", ("status",)
        )
        self.attempts = registry.counter(
            "layer4_attempts_total", "Finished sandbox attempts, by run outcome.", ("outcome",)
        )
        self.task_latency = registry.histogram(
            "layer4_task_latency_seconds",
            "Time from SubmitTask to a terminal status, by status.",
            ("status",),
            _LATENCY_BUCKETS,
        )
        self.attempt_seconds = registry.histogram(
            "layer4_attempt_run_seconds",
            "Sandbox wall time of one attempt, by run outcome.",
            ("outcome",),
            _LATENCY_BUCKETS,
        )
        self.queue_depth = registry.gauge(
            "layer4_queue_depth", "Tasks queued or waiting for a retry."
        )
        self.running = registry.gauge("layer4_running_tasks", "Tasks running in a sandbox now.")
        self.active_modules = registry.gauge(
            "layer4_active_modules", "Module slots with an active deployment."
        )
        self.deployments = registry.counter(
            "layer4_deployments_total", "Deployments made, by kind.", ("kind",)
        )
        self.kpi_drops = registry.counter(
            "layer4_kpi_drops_total",
            "KPI reports dropped because a StreamKpis subscriber's buffer was full.",
        )
        self.kpi_streams = registry.gauge("layer4_kpi_streams", "Open StreamKpis streams.")
        self.kpi_published = registry.counter(
            "layer4_kpi_published_total",
            "KPI reports published (one per finished attempt or batch pair).",
        )
        self.batch_pairs = registry.counter(
            "layer4_batch_pairs_total", "EvaluateBatch pairs run, by run outcome.", ("outcome",)
        )


@dataclass
class _TaskInfo:
    """Per-task facts the scheduler does not keep (guarded by the servicer's lock)."""

    spec: execution_pb2.TaskSpec  # as submitted, with task_id filled in
    enqueued_at: float
    handle: TaskHandle | None = None
    last_kpi: common_pb2.KpiReport | None = None
    last_outcome: int = common_pb2.RUN_OUTCOME_UNSPECIFIED
    module_version: int = 0
    output: bytes = b""
    final: TaskSnapshot | None = None
    final_state: TaskState | None = None


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
        self.record = DeploymentRecord(options.state_dir) if options.state_dir else None
        self.store = DeploymentStore(on_change=self.record.write if self.record else None)
        if self.record is not None:
            # A restart on the same state directory: every slot as it was recorded.
            self.store.restore(self.record.read(self.sandbox.compile))
        self._run_attempt = make_executor(self.store, self.sandbox)
        self.hub = KpiHub(default_queue_size=options.kpi_buffer)
        # Scheduler times are monotonic; reports use Unix time. A fixed offset
        # keeps the order of scheduler events in the converted timestamps.
        self._wall_offset = time.time() - time.monotonic()
        self._lock = threading.RLock()
        self._tasks: dict[str, _TaskInfo] = {}
        self._finished: collections.deque[str] = collections.deque()
        self._dead: collections.deque[execution_pb2.TaskRecord] = collections.deque(
            maxlen=options.max_dead_letters
        )
        self._kpi_lock = threading.Lock()
        self._retained: collections.deque[KpiRecord] = collections.deque(
            maxlen=max(options.kpi_retained, 1)
        )
        # Open streams and the drops already counted for each; drops are
        # counted when they happen (at publish), even while a stream's
        # handler is blocked sending to a slow client.
        self._streams: dict[Subscription, int] = {}
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
        )

    # -- lifecycle ---------------------------------------------------------

    def end_streams(self) -> None:
        """Ends every open StreamKpis stream (first step of a shutdown)."""
        with self._kpi_lock:
            streams = list(self._streams)
        for sub in streams:
            sub.close()

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
        _check_slot_name(request.module_name)
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
        if self.record is not None:
            self.record.keep_module(compiled.digest, request.wasm)
        view = self.store.add_module(
            request.module_name, compiled, request.verdict_id, activate=request.activate
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
        _check_slot_name(request.module_name)
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
        _check_slot_name(request.module_name)
        with _store_errors():
            view = self.store.rollback(request.module_name, request.to_version)
        return self._deployed(
            "rollback", view, "rolled %s back to v%d", request.module_name, view.deployment.version
        )

    def ListVersions(
        self, request: execution_pb2.ListVersionsRequest, context: grpc.ServicerContext
    ) -> execution_pb2.ListVersionsResponse:
        _check_slot_name(request.module_name)
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
        _check_slot_name(request.module_name)
        _check_labels(request.labels)
        limits = self._limits(request.limits if request.HasField("limits") else None)
        max_retries = request.max_retries if request.HasField("max_retries") else None
        with self._lock:
            if request.task_id:
                known = self._tasks.get(request.task_id)
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
            info = _TaskInfo(spec=spec, enqueued_at=time.time())
            self._tasks[spec.task_id] = info
            payload = TaskPayload(
                module_name=request.module_name,
                version=request.module_version,
                entrypoint=entrypoint,
                input=bytes(request.input),
                limits=limits,
                agent_id=request.agent_id,
            )
            priority = request.priority or common_pb2.PRIORITY_NORMAL
            try:
                info.handle = self.scheduler.submit(
                    spec.task_id, payload, priority=priority, max_retries=max_retries
                )
            except (DuplicateTask, ValueError) as exc:  # the checks above make this rare
                del self._tasks[spec.task_id]
                raise InvalidArgument("task_id", f"cannot be submitted now: {exc}") from None
            except QueueFull as exc:
                del self._tasks[spec.task_id]
                raise ResourceExhausted(f"the task queue is full: {exc}") from None
            except SchedulerClosed:
                del self._tasks[spec.task_id]
                raise Unavailable("the execution service is shutting down") from None
            handle = self._handle(info)
        self._refresh_gauges()
        return handle

    def GetTask(
        self, request: execution_pb2.GetTaskRequest, context: grpc.ServicerContext
    ) -> execution_pb2.TaskRecord:
        return self._record(self._info(request.task_id))

    def CancelTask(
        self, request: execution_pb2.CancelTaskRequest, context: grpc.ServicerContext
    ) -> execution_pb2.TaskRecord:
        info = self._info(request.task_id)
        if self.scheduler.cancel(request.task_id, "cancelled by CancelTask") and info.handle:
            # A running attempt stops at its next epoch tick; wait briefly so
            # the reply usually shows the terminal status.
            try:
                info.handle.wait(self.options.cancel_wait_seconds)
            except TimeoutError:
                pass
        return self._record(info)

    def ListDeadLetters(
        self, request: execution_pb2.ListDeadLettersRequest, context: grpc.ServicerContext
    ) -> execution_pb2.ListDeadLettersResponse:
        limit = request.limit or DEFAULT_LIST_LIMIT
        with self._lock:
            tasks = list(self._dead)[:limit]
        return execution_pb2.ListDeadLettersResponse(tasks=tasks)

    # -- KPI stream ------------------------------------------------------------

    def StreamKpis(
        self, request: execution_pb2.StreamKpisRequest, context: grpc.ServicerContext
    ) -> Iterator[common_pb2.KpiReport]:
        since = from_timestamp(request.since) if request.HasField("since") else None
        with self._kpi_lock:
            if self._closed:
                raise Unavailable("the execution service is shutting down")
            if len(self._streams) >= self.options.max_kpi_streams:
                raise ResourceExhausted(
                    f"{len(self._streams)} KPI streams are open (limit "
                    f"{self.options.max_kpi_streams}); close one or filter a shared stream"
                )
            sub = self.hub.subscribe(self.options.kpi_buffer)
            backlog = [r for r in self._retained if r.recorded_at >= since] if since else []
            self._streams[sub] = 0
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
            with self._kpi_lock:
                counted = self._streams.pop(sub, sub.dropped)
                if sub.dropped > counted:
                    self.metrics.kpi_drops.inc(sub.dropped - counted)
            self.metrics.kpi_streams.dec()
            if sub.dropped:
                _log.warning("StreamKpis subscriber dropped %d reports (slow reader)", sub.dropped)

    # -- batched evaluation ----------------------------------------------------

    def EvaluateBatch(
        self, request: execution_pb2.EvaluateBatchRequest, context: grpc.ServicerContext
    ) -> execution_pb2.EvaluateBatchResponse:
        _check_slot_name(request.module_name)
        pairs = len(request.genomes) * len(request.inputs)
        if pairs > MAX_BATCH_PAIRS:
            raise InvalidArgument(
                "genomes",
                f"{len(request.genomes)} genomes x {len(request.inputs)} inputs = {pairs} pairs; "
                f"at most {MAX_BATCH_PAIRS} per batch",
            )
        input_bytes = sum(len(data) for data in request.inputs)
        if input_bytes > MAX_BATCH_INPUT_BYTES:
            raise InvalidArgument(
                "inputs", f"hold {input_bytes} bytes; at most {MAX_BATCH_INPUT_BYTES} per batch"
            )
        limits = self._limits(request.limits if request.HasField("limits") else None)
        with _store_errors():
            source = self.store.module_source(request.module_name, request.module_sha256)
        entrypoint = request.entrypoint or RUN_EXPORT
        if request.entrypoint and not has_entrypoint(source.module.module, entrypoint):
            raise InvalidArgument(
                "entrypoint",
                f"must name a function exported by {request.module_name} with chimera_run's "
                "signature (4 i32 -> i32)",
            )
        # The contract's rules already made every parameter finite.
        params = [encode_params(genome.parameters) for genome in request.genomes]
        batch_id = request.batch_id or f"batch-{uuid.uuid4().hex[:12]}"
        timeout_ms = request.batch_timeout_ms or DEFAULT_BATCH_TIMEOUT_MS
        token = CancelToken(time.monotonic() + timeout_ms / 1000.0)
        context.add_callback(lambda: token.cancel("the caller cancelled the batch"))
        with self._lock:
            if self._closed:
                raise Unavailable("the execution service is shutting down")
            self._batches.add(token)
        started = time.perf_counter()
        try:
            results = run_pairs(
                self.sandbox,
                source.module,
                params,
                request.inputs,
                limits,
                token,
                workers=self.options.concurrency,
                entrypoint=entrypoint,
            )
        finally:
            with self._lock:
                self._batches.discard(token)
        wall_ms = (time.perf_counter() - started) * 1000.0
        response = execution_pb2.EvaluateBatchResponse(
            batch_id=batch_id,
            module_version=source.version,
            module_sha256=source.module_sha256,
            wall_ms=wall_ms,
        )
        width = len(request.inputs)
        for k, result in enumerate(results):
            g, i = divmod(k, width)
            genome = request.genomes[g]
            record = run_kpi(
                result,
                task_id=f"{batch_id}/{g}/{i}",
                module_name=request.module_name,
                module_version=source.version,
                agent_id=genome.agent_id,
                genome_id=genome.id,
                metrics={"genome_index": float(g), "input_index": float(i)},
            )
            self._publish(record)
            report = kpi_to_proto(record)
            response.reports.append(report)
            if report.status == common_pb2.RUN_OUTCOME_SUCCESS:
                response.succeeded += 1
            label = outcome_name(report.status).removeprefix("RUN_OUTCOME_").lower()
            self.metrics.batch_pairs.labels(outcome=label).inc()
        _log.info(
            "batch %s on %s v%d: %d pairs, %d succeeded, %.1f ms",
            batch_id,
            request.module_name,
            source.version,
            len(results),
            response.succeeded,
            wall_ms,
        )
        return response

    # -- scheduler callbacks (worker threads) ------------------------------------

    def _execute(self, attempt: Attempt) -> AttemptOutcome:
        self._refresh_gauges()
        outcome = self._run_attempt(attempt)
        deployment, result = outcome.deployment, outcome.result
        run_code = run_outcome(result)
        record = attempt_kpi(attempt, outcome)
        with self._lock:
            info = self._tasks.get(attempt.task_id)
            if info is not None:
                info.last_kpi = kpi_to_proto(record)
                info.last_outcome = run_code
                info.module_version = deployment.version if deployment else 0
                if result.ok and result.output is not None:
                    info.output = encode_result(result.output)
        label = outcome_name(run_code).removeprefix("RUN_OUTCOME_").lower()
        self.metrics.attempts.labels(outcome=label).inc()
        self.metrics.attempt_seconds.labels(outcome=label).observe(result.latency_ms / 1000.0)
        self._publish(record)
        return outcome

    def _on_complete(self, record: CompletionRecord) -> None:
        status = task_status(record.state)
        label = common_pb2.TaskStatus.Name(status).removeprefix("TASK_STATUS_").lower()
        self.metrics.tasks.labels(status=label).inc()
        self.metrics.task_latency.labels(status=label).observe(
            max(record.finished_at - record.submitted_at, 0.0)
        )
        snap = self.scheduler.snapshot(record.task_id)
        with self._lock:
            info = self._tasks.get(record.task_id)
            if info is not None:
                info.final_state = record.state
                info.final = snap
                self._finished.append(record.task_id)
                while len(self._finished) > self.options.retain_finished:
                    self._tasks.pop(self._finished.popleft(), None)
                if status == common_pb2.TASK_STATUS_DEAD_LETTERED:
                    self._dead.appendleft(self._record(info))
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
        # Under one lock with the retained list, so a stream that asks for a
        # backlog ("since") sees every report exactly once.
        with self._kpi_lock:
            if self.options.kpi_retained:
                self._retained.append(record)
            self.hub.publish(record)
            for sub, counted in self._streams.items():
                if sub.dropped > counted:
                    self.metrics.kpi_drops.inc(sub.dropped - counted)
                    self._streams[sub] = sub.dropped
        self.metrics.kpi_published.inc()

    def _refresh_gauges(self) -> None:
        stats = self.scheduler.stats()
        self.metrics.queue_depth.set(stats["waiting"])
        self.metrics.running.set(stats["running"])
        self.metrics.active_modules.set(self.store.active_count())

    def _limits(self, requested: execution_pb2.ExecutionLimits | None) -> Limits:
        d, m = self.options.default_limits, self.options.max_limits
        fuel = requested.fuel if requested is not None and requested.fuel else d.fuel
        memory = (
            requested.memory_bytes
            if requested is not None and requested.memory_bytes
            else d.memory_bytes
        )
        timeout = (
            float(requested.timeout_ms)
            if requested is not None and requested.timeout_ms
            else d.timeout_ms
        )
        if fuel > m.fuel:
            raise InvalidArgument("limits.fuel", f"must be at most {m.fuel} (service maximum)")
        if memory < WASM_PAGE:
            raise InvalidArgument(
                "limits.memory_bytes", f"must be at least {WASM_PAGE} (one wasm page) when set"
            )
        if memory > m.memory_bytes:
            raise InvalidArgument(
                "limits.memory_bytes", f"must be at most {m.memory_bytes} (service maximum)"
            )
        if timeout > m.timeout_ms:
            raise InvalidArgument(
                "limits.timeout_ms", f"must be at most {int(m.timeout_ms)} (service maximum)"
            )
        return Limits(fuel=fuel, memory_bytes=memory, timeout_ms=timeout)

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

    def _info(self, task_id: str) -> _TaskInfo:
        with self._lock:
            info = self._tasks.get(task_id)
        if info is None:
            raise NotFound(f"no task {task_id!r} (unknown, or finished and no longer retained)")
        return info

    def _handle(self, info: _TaskInfo) -> execution_pb2.TaskHandle:
        record = self._record(info)
        return execution_pb2.TaskHandle(
            task_id=info.spec.task_id,
            status=record.status,
            enqueued_at=timestamp(info.enqueued_at),
            queue_depth=self.scheduler.stats()["waiting"],
        )

    def _wall(self, monotonic: float | None) -> Any:
        return timestamp(None if monotonic is None else monotonic + self._wall_offset)

    def _record(self, info: _TaskInfo) -> execution_pb2.TaskRecord:
        with self._lock:
            snap = info.final
            state = info.final_state
            if snap is None:
                snap = self.scheduler.snapshot(info.spec.task_id)
                if snap is not None and state is None:
                    state = snap.state
            msg = execution_pb2.TaskRecord(
                spec=info.spec,
                status=task_status(state) if state is not None else common_pb2.TASK_STATUS_QUEUED,
                enqueued_at=timestamp(info.enqueued_at),
                module_version=info.module_version,
                last_outcome=info.last_outcome,
                output=info.output,
            )
            if info.last_kpi is not None:
                msg.last_kpi.CopyFrom(info.last_kpi)
        if snap is not None:
            msg.attempts = snap.attempts
            msg.last_error = snap.last_error
            for name, value in (
                ("started_at", snap.attempt_started_at),
                ("finished_at", snap.finished_at),
                ("next_attempt_at", snap.ready_at),
            ):
                ts = self._wall(value)
                if ts is not None:
                    getattr(msg, name).CopyFrom(ts)
        return msg


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


def _check_slot_name(name: str) -> None:
    if not _SLOT_NAME.fullmatch(name):
        raise InvalidArgument(
            "module_name",
            "must start with a letter or digit and contain only letters, digits, '.', '_', '-'",
        )


def _check_labels(labels: Any) -> None:
    for key, value in labels.items():
        if not key or len(key) > _MAX_LABEL_KEY:
            raise InvalidArgument("labels", f"keys must be 1..{_MAX_LABEL_KEY} characters")
        if len(value) > _MAX_LABEL_VALUE:
            raise InvalidArgument(
                f"labels[{key}]", f"must be at most {_MAX_LABEL_VALUE} characters"
            )
