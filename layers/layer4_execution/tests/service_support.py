"""Helpers for the service tests: a real Execution server on loopback behind the real 3->4 gate.

Verdicts come from layer 3 itself: :func:`verdict_server` starts layer 3's
server binary (``//layers/layer3_validation:server``, with the layer's own
``policy.json``) as a subprocess on a free loopback port, and the Execution
server's ``VerdictGate`` asks it over gRPC exactly as in production. Layer 4's
tests reach layer 3 only through its contract, as every other caller does:
a verdict is ``ValidateModule`` on the bytes they then deploy.
"""

from __future__ import annotations


import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from chimera.execution.gate import ModuleGate, VerdictGate
from chimera.execution.main import build_server
from chimera.execution.sandbox import Limits
from chimera.execution.scheduler import RetryPolicy
from chimera.execution.options import ExecutionOptions
from chimera.framework import ChimeraServer, ServerConfig
from chimera.framework.processes import ProcessStack, ServerProcess, ServerSpec, free_ports, runfile
from chimera.v1 import (
    common_pb2,
    execution_pb2,
    execution_pb2_grpc,
    validation_pb2,
    validation_pb2_grpc,
)

LOOPBACK = ServerConfig(port=0, metrics_port=None)
VALIDATION_SERVICE = "chimera.v1.ValidationService"
VALIDATION_SERVER = "layers/layer3_validation/server"

#: Fast settings for tests: short ticks, short retry backoff, 2 workers.
FAST_OPTIONS = ExecutionOptions(
    concurrency=2,
    max_queue=5_000,
    default_limits=Limits(fuel=200_000_000, memory_bytes=16 * 1024 * 1024, timeout_ms=3_000.0),
    retry=RetryPolicy(max_retries=3, base_delay_s=0.05, factor=2.0, max_delay_s=0.2),
    tick_ms=2.0,
    kpi_buffer=4096,
)


@dataclass
class Layer3:
    """The real layer-3 ValidationService on loopback (its own process), and a client of it."""

    server: ServerProcess
    stub: validation_pb2_grpc.ValidationServiceStub

    def validate(
        self, wasm: bytes, name: str = "module", **request: object
    ) -> validation_pb2.ValidationResult:
        """Layer 3's verdict on these bytes (valid or not), as ValidateModule returns it."""
        return self.stub.ValidateModule(  # type: ignore[no-any-return]
            validation_pb2.ValidateModuleRequest(module_name=name, wasm=wasm, **request),
            timeout=30,
        )

    def verdict_for(self, wasm: bytes, name: str = "module") -> str:
        """The id of layer 3's verdict on these bytes, which must be valid."""
        verdict = self.validate(wasm, name)
        assert verdict.is_valid, f"layer 3 rejects {name!r}: {list(verdict.findings)}"
        return verdict.verdict_id

    @property
    def calls(self) -> int:
        """GetVerdict RPCs the server has received, read from its Prometheus endpoint."""
        url = f"http://127.0.0.1:{self.server.spec.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        for line in text.splitlines():
            if line.startswith("grpc_server_started_total{") and all(
                label in line
                for label in (
                    'grpc_type="unary"',
                    f'grpc_service="{VALIDATION_SERVICE}"',
                    'grpc_method="GetVerdict"',
                )
            ):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0


@contextmanager
def verdict_server() -> Iterator[tuple[ServerProcess, Layer3]]:
    """Layer 3's server (its own policy.json) as a subprocess on free loopback ports."""
    port, metrics_port = free_ports(2)
    argv = (str(runfile(VALIDATION_SERVER)), "--port", str(port), "--metrics-port", str(metrics_port))
    with tempfile.TemporaryDirectory() as run_dir, ProcessStack(Path(run_dir)) as stack:
        (server,) = stack.start([ServerSpec("layer3", argv, port, VALIDATION_SERVICE, metrics_port)])
        with grpc.insecure_channel(server.target) as channel:
            yield server, Layer3(server, validation_pb2_grpc.ValidationServiceStub(channel))


@dataclass
class Harness:
    """A running Execution server, its stub and the layer-3 service behind its gate."""

    server: ChimeraServer
    stub: execution_pb2_grpc.ExecutionServiceStub
    channel: grpc.Channel
    layer3: Layer3

    def deploy(self, name: str, wasm: bytes, *, activate: bool = True) -> execution_pb2.Deployment:
        """DeployModule with the verdict layer 3 gives these bytes (ValidateModule)."""
        return self.stub.DeployModule(
            execution_pb2.DeployModuleRequest(
                module_name=name,
                wasm=wasm,
                verdict_id=self.layer3.validate(wasm, name).verdict_id,
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
        return self.server.metrics.sample(name, **labels)


@contextmanager
def running(
    options: ExecutionOptions = FAST_OPTIONS,
    gate: Callable[[str], ModuleGate] | None = None,
) -> Iterator[Harness]:
    """A started Execution server whose gate asks layer 3's real ValidationService.

    ``gate`` (given the validation target) replaces the production VerdictGate.
    """
    with verdict_server() as (vserver, layer3):
        module_gate = gate(vserver.target) if gate is not None else VerdictGate(vserver.target)
        server = build_server(LOOPBACK, options, module_gate)
        with server:
            channel = grpc.insecure_channel(server.target)
            try:
                yield Harness(
                    server, execution_pb2_grpc.ExecutionServiceStub(channel), channel, layer3
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
