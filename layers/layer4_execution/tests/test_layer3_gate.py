"""The 3->4 gate against the real layer-3 ValidationService (its server target, on loopback)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

import guests
from service_support import verdict_server

from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.gate import VerdictGate
from chimera.execution.main import build_server as build_execution
from chimera.execution.options import ExecutionOptions
from chimera.execution.workload import GOOD_GENOME, generate_instance
from chimera.framework import ServerConfig
from chimera.v1 import (
    common_pb2,
    execution_pb2,
    execution_pb2_grpc,
    validation_pb2,
    validation_pb2_grpc,
)

LOOPBACK = ServerConfig(port=0, metrics_port=None)
Stubs = tuple[validation_pb2_grpc.ValidationServiceStub, execution_pb2_grpc.ExecutionServiceStub]


@pytest.fixture(scope="module")
def stubs() -> Iterator[Stubs]:
    with verdict_server() as (validation, layer3):
        execution = build_execution(
            LOOPBACK, ExecutionOptions(concurrency=1), VerdictGate(validation.target)
        )
        with execution, grpc.insecure_channel(execution.target) as e:
            yield layer3.stub, execution_pb2_grpc.ExecutionServiceStub(e)


def vet(stub: validation_pb2_grpc.ValidationServiceStub, name: str, wasm: bytes) -> str:
    verdict = stub.ValidateModule(
        validation_pb2.ValidateModuleRequest(module_name=name, wasm=wasm), timeout=30
    )
    return verdict.verdict_id


def deploy(
    stub: execution_pb2_grpc.ExecutionServiceStub, name: str, wasm: bytes, verdict_id: str
) -> execution_pb2.Deployment:
    return stub.DeployModule(
        execution_pb2.DeployModuleRequest(
            module_name=name, wasm=wasm, verdict_id=verdict_id, activate=True
        ),
        timeout=30,
    )


def test_layer3_verdict_admits_the_kernel_and_it_runs(stubs: Stubs) -> None:
    validation, execution = stubs
    wasm = kernel_wasm_bytes()
    verdict_id = vet(validation, "packer", wasm)
    dep = deploy(execution, "packer", wasm, verdict_id)
    assert dep.verdict_id == verdict_id and dep.active
    execution.DeployGenome(
        execution_pb2.DeployGenomeRequest(
            module_name="packer",
            genome=common_pb2.AgentGenome(id="g", agent_id="a", parameters=GOOD_GENOME),
        )
    )
    handle = execution.SubmitTask(
        execution_pb2.TaskSpec(module_name="packer", input=generate_instance(3, 20).encode())
    )
    for _ in range(500):
        rec = execution.GetTask(execution_pb2.GetTaskRequest(task_id=handle.task_id))
        if rec.status == common_pb2.TASK_STATUS_SUCCEEDED:
            break
        time.sleep(0.01)
    assert rec.status == common_pb2.TASK_STATUS_SUCCEEDED
    assert rec.last_kpi.metrics["quality"] > 0


def test_layer3_refusals_are_failed_precondition(stubs: Stubs) -> None:
    validation, execution = stubs
    wasm = kernel_wasm_bytes()
    kernel_verdict = vet(validation, "packer", wasm)
    # Tampered bytes: the verdict is for other bytes.
    tampered = guests.marker_guest(9.0)
    with pytest.raises(grpc.RpcError) as exc:
        deploy(execution, "tampered", tampered, kernel_verdict)
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SHA-256" in exc.value.details()
    # Layer 3 says no (2048 initial pages exceed its memory policy) although
    # the module is well-formed for layer 4's own checks.
    huge = guests.HUGE_INITIAL_MEMORY
    verdict = validation.ValidateModule(
        validation_pb2.ValidateModuleRequest(module_name="huge", wasm=huge), timeout=30
    )
    assert not verdict.is_valid
    with pytest.raises(grpc.RpcError) as exc:
        deploy(execution, "huge", huge, verdict.verdict_id)
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not valid" in exc.value.details()
    # An id layer 3 never issued.
    with pytest.raises(grpc.RpcError) as exc:
        deploy(execution, "packer", wasm, "never-issued")
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
