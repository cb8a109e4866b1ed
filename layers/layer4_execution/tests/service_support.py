"""Helpers for the service tests: a real Execution server on loopback, and a verdict service.

``VerdictService`` is a small, real gRPC ValidationService (GetVerdict and a
digest-only ValidateModule) served by the shared framework on a free port.
It stands in for layer 3's server, which the execution tests do not depend
on, so the gate is always exercised over gRPC exactly as in production.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import grpc

from chimera.execution.gate import ModuleGate, VerdictGate
from chimera.execution.sandbox import Limits
from chimera.execution.scheduler import RetryPolicy
from chimera.execution.server import ExecutionServer
from chimera.execution.service import ExecutionOptions
from chimera.framework import ChimeraServer, NotFound, ServerConfig, ServiceRegistration
from chimera.v1 import (
    common_pb2,
    execution_pb2,
    execution_pb2_grpc,
    validation_pb2,
    validation_pb2_grpc,
)

#: Fast settings for tests: short ticks, short retry backoff, 2 workers.
FAST_OPTIONS = ExecutionOptions(
    concurrency=2,
    max_queue=5_000,
    default_limits=Limits(fuel=200_000_000, memory_bytes=16 * 1024 * 1024, timeout_ms=3_000.0),
    retry=RetryPolicy(max_retries=3, base_delay_s=0.05, factor=2.0, max_delay_s=0.2),
    tick_ms=2.0,
    kpi_buffer=4096,
)


class VerdictService(validation_pb2_grpc.ValidationServiceServicer):
    """Keeps verdicts in memory; ValidateModule judges only by a deny-list of names."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._verdicts: dict[str, validation_pb2.ValidationResult] = {}
        self.calls = 0

    def put(self, verdict: validation_pb2.ValidationResult) -> str:
        """Stores a crafted verdict (any content) and returns its id."""
        if not verdict.verdict_id:
            verdict.verdict_id = uuid.uuid4().hex
        with self._lock:
            self._verdicts[verdict.verdict_id] = verdict
        return verdict.verdict_id

    def verdict_for(self, wasm: bytes, *, valid: bool = True) -> str:
        """A module verdict for exactly these bytes."""
        return self.put(
            validation_pb2.ValidationResult(
                is_valid=valid,
                subject_sha256=hashlib.sha256(wasm).hexdigest(),
                operation_type=validation_pb2.OPERATION_TYPE_MODULE,
            )
        )

    def ValidateModule(
        self, request: validation_pb2.ValidateModuleRequest, context: grpc.ServicerContext
    ) -> validation_pb2.ValidationResult:
        verdict = validation_pb2.ValidationResult(
            is_valid=True,
            subject_sha256=hashlib.sha256(request.wasm).hexdigest(),
            operation_type=validation_pb2.OPERATION_TYPE_MODULE,
            subject_id=request.module_name,
        )
        self.put(verdict)
        return verdict

    def GetVerdict(
        self, request: validation_pb2.GetVerdictRequest, context: grpc.ServicerContext
    ) -> validation_pb2.ValidationResult:
        with self._lock:
            self.calls += 1
            found = self._verdicts.get(request.verdict_id)
        if found is None:
            raise NotFound(f"no verdict {request.verdict_id!r}")
        return found


@contextmanager
def verdict_server() -> Iterator[tuple[ChimeraServer, VerdictService]]:
    service = VerdictService()
    server = ChimeraServer(
        ServerConfig(port=0, metrics_port=None),
        [
            ServiceRegistration(
                validation_pb2_grpc.add_ValidationServiceServicer_to_server,
                service,
                "chimera.v1.ValidationService",
            )
        ],
    )
    with server:
        yield server, service


@dataclass
class Harness:
    """A running Execution server, its stub and the verdict service behind its gate."""

    server: ExecutionServer
    stub: execution_pb2_grpc.ExecutionServiceStub
    channel: grpc.Channel
    verdicts: VerdictService

    def deploy(self, name: str, wasm: bytes, *, activate: bool = True) -> execution_pb2.Deployment:
        """DeployModule with a valid verdict for these bytes."""
        return self.stub.DeployModule(
            execution_pb2.DeployModuleRequest(
                module_name=name,
                wasm=wasm,
                verdict_id=self.verdicts.verdict_for(wasm),
                activate=activate,
            )
        )

    def genome(
        self, name: str, params: tuple[float, ...], genome_id: str, **kw: object
    ) -> execution_pb2.Deployment:
        return self.stub.DeployGenome(
            execution_pb2.DeployGenomeRequest(
                module_name=name,
                genome=common_pb2.AgentGenome(id=genome_id, agent_id="agent-1", parameters=params),
                **kw,
            )
        )

    def submit(self, module: str, **kw: object) -> execution_pb2.TaskHandle:
        return self.stub.SubmitTask(execution_pb2.TaskSpec(module_name=module, **kw))

    def wait_terminal(self, task_id: str, timeout: float = 10.0) -> execution_pb2.TaskRecord:
        terminal = {
            common_pb2.TASK_STATUS_SUCCEEDED,
            common_pb2.TASK_STATUS_DEAD_LETTERED,
            common_pb2.TASK_STATUS_CANCELLED,
        }
        end = time.monotonic() + timeout
        while True:
            rec = self.stub.GetTask(execution_pb2.GetTaskRequest(task_id=task_id))
            if rec.status in terminal:
                return rec
            if time.monotonic() > end:
                raise AssertionError(f"task {task_id} still {rec.status} after {timeout}s")
            time.sleep(0.01)

    def metric(self, name: str, **labels: str) -> float:
        metric = self.server.metrics.get(name)
        assert metric is not None, name
        return metric.value(**labels)  # type: ignore[attr-defined]


@contextmanager
def running(
    options: ExecutionOptions = FAST_OPTIONS,
    gate: Callable[[str], ModuleGate] | None = None,
) -> Iterator[Harness]:
    """A started Execution server whose gate asks a real (test) verdict service."""
    with verdict_server() as (vserver, verdicts):
        module_gate = gate(vserver.target) if gate is not None else VerdictGate(vserver.target)
        server = ExecutionServer(ServerConfig(port=0, metrics_port=None), options, module_gate)
        with server:
            channel = grpc.insecure_channel(server.target)
            try:
                yield Harness(
                    server, execution_pb2_grpc.ExecutionServiceStub(channel), channel, verdicts
                )
            finally:
                channel.close()


@dataclass
class KpiCollector:
    """Reads a StreamKpis stream on a thread; ``reports`` grows as they arrive."""

    call: grpc.Call
    reports: list[common_pb2.KpiReport] = field(default_factory=list)
    error: BaseException | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def run(self) -> None:
        try:
            for report in self.call:  # type: ignore[attr-defined]
                with self._cond:
                    self.reports.append(report)
                    self._cond.notify_all()
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:  # type: ignore[attr-defined]
                self.error = exc
        with self._cond:
            self._cond.notify_all()

    def wait_for(
        self, predicate: Callable[[list[common_pb2.KpiReport]], bool], timeout: float = 10.0
    ) -> list[common_pb2.KpiReport]:
        with self._cond:
            if not self._cond.wait_for(
                lambda: predicate(self.reports) or self.error is not None, timeout
            ):
                raise AssertionError(f"KPI condition not met; got {len(self.reports)} reports")
            if self.error is not None:
                raise self.error
            return list(self.reports)

    def by_task(self) -> dict[str, list[common_pb2.KpiReport]]:
        out: dict[str, list[common_pb2.KpiReport]] = {}
        with self._cond:
            for r in self.reports:
                out.setdefault(r.task_id, []).append(r)
        return out


@contextmanager
def collect_kpis(
    stub: execution_pb2_grpc.ExecutionServiceStub,
    request: execution_pb2.StreamKpisRequest | None = None,
) -> Iterator[KpiCollector]:
    """Opens StreamKpis, waits until the server has subscribed, reads on a thread."""
    call = stub.StreamKpis(request or execution_pb2.StreamKpisRequest())
    collector = KpiCollector(call)
    thread = threading.Thread(target=collector.run, daemon=True)
    thread.start()
    try:
        yield collector
    finally:
        call.cancel()
        thread.join(5)


def wait_streams(harness: Harness, count: int, timeout: float = 5.0) -> None:
    """Blocks until the server has ``count`` KPI streams open (subscribed)."""
    end = time.monotonic() + timeout
    while harness.metric("layer4_kpi_streams") < count:
        if time.monotonic() > end:
            raise AssertionError("KPI stream did not open")
        time.sleep(0.005)
