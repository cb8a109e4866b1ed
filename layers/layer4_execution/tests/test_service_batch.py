"""EvaluateBatch through the real server: pairs, order, limits, bad input, KPIs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

import guests
from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.convert import run_outcome
from chimera.execution.sandbox import Sandbox
from chimera.execution.workload import BAD_GENOME, GOOD_GENOME, generate_instance
from chimera.v1 import common_pb2, execution_pb2
from service_support import FAST_OPTIONS, Harness, collect_kpis, running, wait_streams

KERNEL = kernel_wasm_bytes()
INPUTS = [generate_instance(seed, 30).encode() for seed in (1, 2, 3)]
#: Both genomes succeed with the defaults; GOOD needs ~0.5M fuel on these
#: instances and BAD ~0.1M, so a 300k fuel limit exhausts GOOD only.
GENOMES = (GOOD_GENOME, BAD_GENOME, (0.5, 1.0, -1.0, 0.2, 2.0, 1.0, 0.3, 0.5))
FUEL_BETWEEN = 300_000


def genome(params: tuple[float, ...], genome_id: str) -> common_pb2.AgentGenome:
    return common_pb2.AgentGenome(id=genome_id, agent_id="agent-b", parameters=params)


def batch(
    h: Harness, genomes: list[common_pb2.AgentGenome], inputs: list[bytes], **kw: object
) -> execution_pb2.EvaluateBatchResponse:
    return h.stub.EvaluateBatch(  # type: ignore[no-any-return]
        execution_pb2.EvaluateBatchRequest(
            module_name="kernel", genomes=genomes, inputs=inputs, **kw
        ),
        timeout=60,
    )


@pytest.fixture(scope="module")
def h() -> Iterator[Harness]:
    """One server (and layer 3) for the module; slot "kernel" holds the kernel."""
    with running() as harness:
        harness.deploy("kernel", KERNEL)
        yield harness


def rpc_error(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as excinfo:
        call()  # type: ignore[operator]
    return excinfo.value


def test_each_pair_matches_its_own_sandbox_run_in_genome_major_order(h: Harness) -> None:
    dep = h.stub.ListVersions(execution_pb2.ListVersionsRequest(module_name="kernel")).deployments[0]
    genomes = [genome(p, f"g{k}") for k, p in enumerate(GENOMES)]
    reply = batch(h, genomes, INPUTS, batch_id="pop-1")
    assert reply.batch_id == "pop-1" and reply.module_version == dep.version
    assert reply.module_sha256 == dep.module_sha256
    assert len(reply.reports) == len(GENOMES) * len(INPUTS)
    assert reply.succeeded == len(reply.reports)
    with Sandbox(tick_ms=2.0, default_limits=FAST_OPTIONS.default_limits) as sb:
        module = sb.compile(KERNEL)
        for g, params in enumerate(GENOMES):
            for i, data in enumerate(INPUTS):
                report = reply.reports[g * len(INPUTS) + i]
                alone = sb.run(module, params, data)
                assert alone.ok and alone.output is not None
                assert report.task_id == f"pop-1/{g}/{i}"
                assert report.genome_id == f"g{g}" and report.agent_id == "agent-b"
                assert report.status == run_outcome(alone) == common_pb2.RUN_OUTCOME_SUCCESS
                assert report.fuel_consumed == alone.fuel_consumed
                assert report.memory_peak_bytes == alone.memory_peak_bytes
                assert report.metrics["genome_index"] == g
                assert report.metrics["input_index"] == i
                for name, value in alone.output.metrics.items():
                    assert report.metrics[name] == value
    # Different genomes really ran differently (not one result copied).
    assert len({r.metrics["quality"] for r in reply.reports}) > len(INPUTS)


def test_limits_and_kernel_refusals_are_per_pair_statuses(h: Harness) -> None:
    genomes = [
        genome(GOOD_GENOME, "heavy"),
        genome(BAD_GENOME, "light"),
        genome(GOOD_GENOME[:5], "short"),  # the kernel's INVALID_PARAMS
    ]
    reply = batch(h, genomes, INPUTS[:2], limits=execution_pb2.ExecutionLimits(fuel=FUEL_BETWEEN))
    status = [[reply.reports[g * 2 + i].status for i in range(2)] for g in range(3)]
    assert status[0] == [common_pb2.RUN_OUTCOME_OUT_OF_FUEL] * 2
    assert status[1] == [common_pb2.RUN_OUTCOME_SUCCESS] * 2
    assert status[2] == [common_pb2.RUN_OUTCOME_TRAP] * 2
    assert all(reply.reports[4 + i].metrics["guest_status"] == 1.0 for i in range(2))
    assert reply.succeeded == 2
    assert all(r.fuel_consumed <= FUEL_BETWEEN for r in reply.reports)


def test_batch_deadline_bounds_a_batch_of_endless_guests(h: Harness) -> None:
    h.deploy("spin", guests.INFINITE_LOOP)
    started = time.monotonic()
    reply = h.stub.EvaluateBatch(
        execution_pb2.EvaluateBatchRequest(
            module_name="spin",
            genomes=[genome((1.0,), f"g{k}") for k in range(4)],
            inputs=[b"x", b"y"],
            limits=execution_pb2.ExecutionLimits(fuel=10**12, timeout_ms=60_000),
            batch_timeout_ms=300,
        ),
        timeout=30,
    )
    assert time.monotonic() - started < 5.0
    assert len(reply.reports) == 8 and reply.succeeded == 0
    assert {r.status for r in reply.reports} == {common_pb2.RUN_OUTCOME_DEADLINE_EXCEEDED}


def test_every_pair_is_published_on_the_kpi_stream(h: Harness) -> None:
    before = h.metric("layer4_batch_pairs_total", outcome="success")
    with collect_kpis(h.stub, execution_pb2.StreamKpisRequest(module_name="kernel")) as kpis:
        wait_streams(h, 1)
        reply = batch(h, [genome(GOOD_GENOME, "a"), genome(BAD_GENOME, "b")], INPUTS[:2])
        want = {r.task_id for r in reply.reports}
        seen = kpis.wait_for(lambda rs: want <= {r.task_id for r in rs})
    streamed = {r.task_id: r for r in seen if r.task_id in want}
    assert streamed == {r.task_id: r for r in reply.reports}
    assert h.metric("layer4_batch_pairs_total", outcome="success") == before + 4


def test_module_sha256_picks_a_stored_module_of_the_slot(h: Harness) -> None:
    kernel = h.deploy("swap", KERNEL)
    h.deploy("swap", guests.OK_GUEST)  # now active, but the batch names the kernel
    reply = h.stub.EvaluateBatch(
        execution_pb2.EvaluateBatchRequest(
            module_name="swap",
            genomes=[genome(GOOD_GENOME, "a")],
            inputs=INPUTS[:1],
            module_sha256=kernel.module_sha256,
        )
    )
    assert reply.module_version == kernel.version
    assert reply.reports[0].metrics["quality"] > 0
    active = h.stub.EvaluateBatch(
        execution_pb2.EvaluateBatchRequest(
            module_name="swap", genomes=[genome(GOOD_GENOME, "a")], inputs=INPUTS[:1]
        )
    )
    assert active.module_version == kernel.version + 1
    assert "quality" not in active.reports[0].metrics


# Requests the contract rules or the service refuse with INVALID_ARGUMENT are
# in test_service_bad_input.py's table, with every other RPC's.


def test_a_digest_not_in_the_slot_is_not_found(h: Harness) -> None:
    err = rpc_error(
        lambda: batch(h, [genome(GOOD_GENOME, "a")], INPUTS[:1], module_sha256="f" * 64)
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert "SHA-256" in err.details()  # type: ignore[attr-defined]


def test_unknown_slot_is_not_found(h: Harness) -> None:
    err = rpc_error(
        lambda: h.stub.EvaluateBatch(
            execution_pb2.EvaluateBatchRequest(
                module_name="nowhere", genomes=[genome(GOOD_GENOME, "a")], inputs=INPUTS[:1]
            )
        )
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]

