"""4 -> 5: refinement's StreamKpis subscription against a real layer-4 ExecutionService on loopback.

Layer 4 runs its real kernel (deployed through a TrustingGate: these tests
are about the KPI stream, not the 3 -> 4 admission, which layer 4 tests).
The refinement server subscribes, buffers what the kernel's runs report,
and keeps subscribing when layer 4 restarts on the same port. Non-finite
values, which layer 4 never sends, come from a minimal stand-in stream.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.gate import TrustingGate
from chimera.execution.sandbox import Limits
from chimera.execution.scheduler import RetryPolicy
from chimera.execution.main import build_server as build_execution
from chimera.execution.options import ExecutionOptions
from chimera.execution.workload import GOOD_GENOME, generate_instance
from chimera.framework import ChimeraServer, ServerConfig
from chimera.refinement.buffers import KpiBuffers
from chimera.refinement.main import Options, build_server
from chimera.refinement.service import SERVICE_NAME as REFINEMENT, RefinementServicer
from chimera.refinement.subscription import Backoff
from chimera.testing.helpers import free_port, wait_until
from chimera.v1 import (
    common_pb2,
    execution_pb2,
    execution_pb2_grpc,
    refinement_pb2,
    refinement_pb2_grpc,
)

FAST = ExecutionOptions(
    concurrency=2,
    default_limits=Limits(fuel=2_000_000_000, memory_bytes=64 * 1024 * 1024, timeout_ms=10_000.0),
    retry=RetryPolicy(max_retries=0, base_delay_s=0.05, factor=2.0, max_delay_s=0.2),
    tick_ms=2.0,
)
QUICK_BACKOFF = Backoff(base_s=0.05, factor=2.0, cap_s=0.3, jitter=0.5)
#: Layer 4, the refinement server subscribed to it, and layer 4's port.
Pair = tuple[ChimeraServer, ChimeraServer, int]


def layer4(port: int) -> ChimeraServer:
    return build_execution(ServerConfig(port=port, metrics_port=None), FAST, TrustingGate())


def deploy_and_run(target: str, tasks: int) -> list[str]:
    """Deploys the kernel with a genome into slot "packer" and runs ``tasks`` tasks."""
    instance = generate_instance(3, 40).encode()
    with grpc.insecure_channel(target) as channel:
        stub = execution_pb2_grpc.ExecutionServiceStub(channel)
        stub.DeployModule(
            execution_pb2.DeployModuleRequest(
                module_name="packer", wasm=kernel_wasm_bytes(), verdict_id="trusted", activate=True
            ),
            timeout=30,
        )
        stub.DeployGenome(
            execution_pb2.DeployGenomeRequest(
                module_name="packer",
                genome=common_pb2.AgentGenome(id="g-good", agent_id="a1", parameters=GOOD_GENOME),
            ),
            timeout=10,
        )
        return [
            stub.SubmitTask(execution_pb2.TaskSpec(module_name="packer", input=instance), timeout=10).task_id
            for _ in range(tasks)
        ]


@pytest.fixture()
def pair() -> Iterator[Pair]:
    port = free_port()
    execution = layer4(port).start()
    refinement = build_server(
        ServerConfig(port=0, metrics_port=None),
        Options(execution_target=f"127.0.0.1:{port}", backoff=QUICK_BACKOFF),
    ).start()
    try:
        yield execution, refinement, port
    finally:
        refinement.stop()
        execution.stop()


def buffers(refinement: ChimeraServer) -> KpiBuffers:
    servicer = refinement.servicer(REFINEMENT)
    assert isinstance(servicer, RefinementServicer)
    return servicer.buffers


def stream_gauge(execution: ChimeraServer) -> float:
    return execution.metrics.sample("layer4_kpi_streams")


def counter(server: ChimeraServer, name: str, **labels: str) -> float:
    return server.metrics.sample(name, **labels)


def test_kernel_runs_flow_into_the_buffers_and_patterns(pair: Pair) -> None:
    execution, refinement, _ = pair
    tasks = deploy_and_run(execution.target, 6)
    wait_until(lambda: len(buffers(refinement).reports("packer")) >= 6, what="6 KPI reports")
    reports = buffers(refinement).reports("packer")
    assert {r.task_id for r in reports} == set(tasks)
    assert all(r.genome_id == "g-good" and r.module_version == 2 for r in reports)
    with grpc.insecure_channel(refinement.target) as channel:
        stub = refinement_pb2_grpc.RefinementServiceStub(channel)
        result = stub.DetectPatterns(
            refinement_pb2.DetectPatternsRequest(metric="quality", module_name="packer", module_version=2),
            timeout=10,
        )
    assert result.samples_analyzed == 6 and 0 < result.mean <= 1
    assert counter(refinement, "layer5_kpis_ingested_total", source="stream") == 6


def test_the_subscription_survives_a_layer4_restart(pair: Pair) -> None:
    execution, refinement, port = pair
    deploy_and_run(execution.target, 2)
    wait_until(lambda: len(buffers(refinement).reports()) >= 2, what="first reports")
    execution.stop()
    # Down: the subscription fails, backs off and retries.
    wait_until(lambda: counter(refinement, "layer5_kpi_stream_reconnects_total") >= 2, what="retries")
    restarted = layer4(port).start()
    try:
        wait_until(lambda: stream_gauge(restarted) >= 1, what="re-subscription")
        assert counter(refinement, "layer5_kpi_stream_connected") == 1
        later = deploy_and_run(restarted.target, 3)
        wait_until(lambda: len(buffers(refinement).reports()) >= 5, what="reports after the restart")
        assert set(later) <= {r.task_id for r in buffers(refinement).reports()}
    finally:
        restarted.stop()


class _FixedStream(execution_pb2_grpc.ExecutionServiceServicer):
    """Streams a fixed list of reports, then holds the stream open."""

    def __init__(self, reports: list[common_pb2.KpiReport]) -> None:
        self.reports = reports

    def StreamKpis(  # noqa: N802 (gRPC method name)
        self, request: execution_pb2.StreamKpisRequest, context: grpc.ServicerContext
    ) -> Iterator[common_pb2.KpiReport]:
        yield from self.reports
        while context.is_active():
            time.sleep(0.02)


def test_backoff_grows_to_its_cap_with_jitter_below_it() -> None:
    rng = random.Random(0)
    backoff = Backoff(base_s=0.1, factor=2.0, cap_s=1.0, jitter=0.5)
    for attempt, ceiling in enumerate((0.1, 0.2, 0.4, 0.8, 1.0, 1.0)):
        delays = [backoff.delay(attempt, rng) for _ in range(50)]
        assert all(ceiling * 0.5 <= d <= ceiling for d in delays)
        assert max(delays) - min(delays) > ceiling * 0.2  # jittered, not fixed
    assert backoff.delay(10_000, rng) <= 1.0


def test_non_finite_stream_values_are_rejected_and_counted() -> None:
    def kpi(i: int, quality: float) -> common_pb2.KpiReport:
        return common_pb2.KpiReport(
            task_id=f"t{i}", module_name="m", module_version=1, latency_ms=1.0,
            status=common_pb2.RUN_OUTCOME_SUCCESS, metrics={"quality": quality},
            recorded_at=Timestamp(seconds=2_000_000_000 + i),
        )

    fake = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    execution_pb2_grpc.add_ExecutionServiceServicer_to_server(
        _FixedStream([kpi(0, 0.5), kpi(1, math.nan), kpi(2, math.inf), kpi(3, 0.7)]), fake
    )
    port = fake.add_insecure_port("127.0.0.1:0")
    fake.start()
    try:
        with build_server(
            ServerConfig(port=0, metrics_port=None),
            Options(execution_target=f"127.0.0.1:{port}", backoff=QUICK_BACKOFF),
        ) as refinement:
            wait_until(
                lambda: counter(refinement, "layer5_kpis_rejected_total", reason="non_finite") == 2,
                what="two rejections",
            )
            assert [r.task_id for r in buffers(refinement).reports()] == ["t0", "t3"]
    finally:
        fake.stop(None)
