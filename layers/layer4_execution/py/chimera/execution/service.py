"""The Execution gRPC service (execution.proto) on the shared framework.

``ExecutionServicer`` maps each RPC to the layer's domain objects and holds
no task, deployment or KPI state of its own:

* ``DeployModule`` validates the bytes in the sandbox's engine (magic,
  structure, import allow-list, ABI exports -> INVALID_ARGUMENT on ``wasm``),
  then asks the :mod:`~chimera.execution.gate` for a layer-3 verdict on their
  exact SHA-256, then stores the compiled module in its slot.
* ``DeployGenome`` / ``RollbackGenome`` / ``ListVersions`` are the
  :class:`~chimera.execution.deployments.DeploymentStore` (activation is one
  reference change under a lock; its refusals are the framework's errors).
* ``SubmitTask`` / ``GetTask`` / ``CancelTask`` / ``ListDeadLetters`` are
  :class:`~chimera.execution.tasks.Tasks` on the priority scheduler, which
  owns each task's spec, attempts, last outcome and dead letter.
* ``EvaluateBatch`` is :class:`~chimera.execution.batch.Batches`: one module
  with many genomes x inputs directly in the sandbox, not the task queue.
* ``StreamKpis`` gives each stream its own bounded
  :class:`~chimera.execution.kpi.KpiHub` subscription; the hub owns KPI
  history, stream caps and drop counting (``layer4_kpi_drops_total``).

One KPI report is published per finished attempt, from the worker that ran
it, and per batch pair, when its batch ends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import grpc

from chimera.execution.batch import Batches
from chimera.execution.convert import deployment_to_proto, from_timestamp, kpi_to_proto
from chimera.execution.deployment_record import DeploymentRecord
from chimera.execution.deployments import DeploymentStore, DeploymentView
from chimera.execution.gate import ModuleGate
from chimera.execution.kpi import HubClosed, KpiHub, TooManySubscribers
from chimera.execution.metrics import ExecutionMetrics
from chimera.execution.options import ExecutionOptions
from chimera.execution.sandbox import InvalidModule, Sandbox
from chimera.execution.tasks import Tasks
from chimera.framework import InvalidArgument, MetricsRegistry, ResourceExhausted, Unavailable
from chimera.v1 import common_pb2, execution_pb2, execution_pb2_grpc

__all__ = ["SERVICE_NAME", "ExecutionServicer"]

_log = logging.getLogger("chimera.execution.service")

SERVICE_NAME = "chimera.v1.ExecutionService"
DEFAULT_LIST_LIMIT = 100


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
        self.hub = KpiHub(
            options.kpi_buffer,
            retain=options.kpi_retained,
            max_subscribers=options.max_kpi_streams,
            on_drop=self.metrics.kpi_drops.inc,
            on_publish=self.metrics.kpi_published.inc,
        )
        self.tasks = Tasks(options, self.store, self.sandbox, self.hub, self.metrics)
        self.scheduler = self.tasks.scheduler  # its stats are the service's load (tests read them)
        self.batches = Batches(self.sandbox, self.store, options)
        self._close_lock = threading.Lock()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------

    def end_streams(self) -> None:
        """Ends every open StreamKpis stream and refuses new ones (first step of a shutdown)."""
        self.hub.close()

    def close(self) -> None:
        """Ends streams and batches, cancels queued and running tasks, stops the sandbox.
        Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self.batches.close()
        self.end_streams()
        self.tasks.close()
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
        stored = common_pb2.AgentGenome()
        stored.CopyFrom(genome)
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
        view = self.store.rollback(request.module_name, request.to_version)
        return self._deployed(
            "rollback", view, "rolled %s back to v%d", request.module_name, view.deployment.version
        )

    def ListVersions(
        self, request: execution_pb2.ListVersionsRequest, context: grpc.ServicerContext
    ) -> execution_pb2.ListVersionsResponse:
        views, active = self.store.list(request.module_name, request.limit or DEFAULT_LIST_LIMIT)
        return execution_pb2.ListVersionsResponse(
            deployments=[deployment_to_proto(v) for v in views], active_version=active
        )

    # -- tasks ---------------------------------------------------------------

    def SubmitTask(
        self, request: execution_pb2.TaskSpec, context: grpc.ServicerContext
    ) -> execution_pb2.TaskHandle:
        return self.tasks.submit(request)

    def GetTask(
        self, request: execution_pb2.GetTaskRequest, context: grpc.ServicerContext
    ) -> execution_pb2.TaskRecord:
        return self.tasks.get(request.task_id)

    def CancelTask(
        self, request: execution_pb2.CancelTaskRequest, context: grpc.ServicerContext
    ) -> execution_pb2.TaskRecord:
        return self.tasks.cancel(request.task_id)

    def ListDeadLetters(
        self, request: execution_pb2.ListDeadLettersRequest, context: grpc.ServicerContext
    ) -> execution_pb2.ListDeadLettersResponse:
        return execution_pb2.ListDeadLettersResponse(
            tasks=self.tasks.dead_letters(request.limit or DEFAULT_LIST_LIMIT)
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
        try:
            for record in sub.follow(backlog, context.is_active):
                if record.matches(request.module_name, request.agent_id):
                    yield kpi_to_proto(record)
        finally:
            sub.close()
            self.metrics.kpi_streams.dec()
            if sub.dropped:
                _log.warning("StreamKpis subscriber dropped %d reports (slow reader)", sub.dropped)

    # -- batched evaluation ----------------------------------------------------

    def EvaluateBatch(
        self, request: execution_pb2.EvaluateBatchRequest, context: grpc.ServicerContext
    ) -> execution_pb2.EvaluateBatchResponse:
        response, records = self.batches.evaluate(request, context.add_callback)
        for record in records:
            self.hub.publish(record)
        self.metrics.batch_finished(response)
        _log.info(
            "batch %s on %s v%d: %d pairs, %d succeeded, %.1f ms",
            response.batch_id,
            request.module_name,
            response.module_version,
            len(records),
            response.succeeded,
            response.wall_ms,
        )
        return response

    # -- helpers ---------------------------------------------------------------

    def _deployed(
        self, kind: str, view: DeploymentView, message: str, *args: object
    ) -> execution_pb2.Deployment:
        """Counts and logs a deployment change (``kind``); returns it as the contract's message."""
        self.metrics.deployments.labels(kind=kind).inc()
        self.tasks.refresh_load()
        _log.info(message, *args)
        return deployment_to_proto(view)
