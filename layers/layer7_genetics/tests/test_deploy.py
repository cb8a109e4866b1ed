"""DeployBest into a real layer-4 ExecutionService (its gate asking a real
layer-3 ValidationService), both on loopback: the hot swap and its record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.gate import VerdictGate
from chimera.execution.server import ExecutionServer
from chimera.execution.service import ExecutionOptions
from chimera.genetics.main import Options, build_server
from chimera.genetics.store import GenomeStore
from chimera.v1 import execution_pb2, execution_pb2_grpc, genetics_pb2, validation_pb2, validation_pb2_grpc
from chimera.validation.main import build_server as build_validation
from chimera.validation.policy import Policy
from service_support import LOOPBACK, SIZE, Stub, advance, start


@pytest.fixture(scope="module")
def execution() -> Iterator[tuple[str, execution_pb2_grpc.ExecutionServiceStub]]:
    """Layer 3 and layer 4 on loopback, with the kernel deployed to slot 'packer' (v1)."""
    validation, _ = build_validation(LOOPBACK, Policy.load())
    with validation, grpc.insecure_channel(validation.target) as vchannel:
        wasm = kernel_wasm_bytes()
        verdict = validation_pb2_grpc.ValidationServiceStub(vchannel).ValidateModule(
            validation_pb2.ValidateModuleRequest(module_name="packer", wasm=wasm), timeout=30
        )
        assert verdict.is_valid
        with ExecutionServer(LOOPBACK, ExecutionOptions(), VerdictGate(validation.target)) as server:
            with grpc.insecure_channel(server.target) as channel:
                layer4 = execution_pb2_grpc.ExecutionServiceStub(channel)
                first = layer4.DeployModule(
                    execution_pb2.DeployModuleRequest(
                        module_name="packer", wasm=wasm, verdict_id=verdict.verdict_id, activate=True
                    )
                )
                assert first.version == 1
                yield server.target, layer4


def test_deploy_best_hot_swaps_layer_4_and_records_the_replaced_version(
    execution: tuple[str, execution_pb2_grpc.ExecutionServiceStub], tmp_path: Path
) -> None:
    target, layer4 = execution
    options = Options(run_dir=tmp_path, execution_target=target)
    with build_server(LOOPBACK, options) as server, grpc.insecure_channel(server.target) as channel:
        stub = Stub(channel)
        r = start(stub, "packer-agent", population_size=SIZE, seed=1)
        r = advance(stub, "packer-agent", list(r.population), seed=1)
        deployed = stub.DeployBest(genetics_pb2.DeployBestRequest(agent_id="packer-agent", module_name="packer"))
        assert deployed.genome.id == r.best.id
        assert (deployed.deployment.version, deployed.deployment.previous_version) == (2, 1)
        assert deployed.deployment.genome.id == r.best.id and deployed.deployment.active
        assert list(deployed.deployment.genome.parameters) == list(r.best.parameters)

        r = advance(stub, "packer-agent", list(r.population), seed=1)
        again = stub.DeployBest(genetics_pb2.DeployBestRequest(agent_id="packer-agent", module_name="packer"))
        assert (again.deployment.version, again.deployment.previous_version) == (3, 2)
        versions = layer4.ListVersions(execution_pb2.ListVersionsRequest(module_name="packer"))
        assert [(v.version, v.active) for v in versions.deployments][:2] == [(3, True), (2, False)]

        with pytest.raises(grpc.RpcError) as err:
            stub.DeployBest(
                genetics_pb2.DeployBestRequest(agent_id="packer-agent", module_name="packer", min_fitness=1.0)
            )
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.RpcError) as err:
            stub.DeployBest(genetics_pb2.DeployBestRequest(agent_id="packer-agent", module_name="no-such-slot"))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert "execution refused DeployGenome" in str(err.value.details())
    with GenomeStore.open(tmp_path / "genomes.sqlite") as store:
        recorded = store.deployments("packer-agent")
        assert [(d.version, d.replaced_version, d.module_name) for d in recorded] == [
            (3, 2, "packer"), (2, 1, "packer"),
        ]
        assert recorded[1].genome_id == deployed.genome.id
