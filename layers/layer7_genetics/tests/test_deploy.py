"""DeployBest into layer 4's own server (its gate asking layer 3's own server),
both subprocesses on loopback: the hot swap and its record."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from chimera.framework.processes import ProcessStack, ServerSpec, free_ports, runfile
from chimera.genetics.main import Options, build_server
from chimera.genetics.store import GenomeStore
from chimera.v1 import execution_pb2, execution_pb2_grpc, genetics_pb2, validation_pb2, validation_pb2_grpc
from service_support import LOOPBACK, SIZE, Stub, advance, start

KERNEL = "layers/layer4_execution/execution_core_module.wasm"


@pytest.fixture(scope="module")
def execution() -> Iterator[tuple[str, execution_pb2_grpc.ExecutionServiceStub]]:
    """Layers 3 and 4 on loopback, with layer 4's kernel deployed to slot 'packer' (v1)."""
    v_port, v_metrics, e_port, e_metrics = free_ports(4)
    layer3 = ServerSpec(
        "layer3",
        (str(runfile("layers/layer3_validation/server")), "--port", str(v_port), "--metrics-port", str(v_metrics)),
        v_port,
        "chimera.v1.ValidationService",
        v_metrics,
    )
    layer4 = ServerSpec(
        "layer4",
        (
            str(runfile("layers/layer4_execution/server")), "--port", str(e_port),
            "--metrics-port", str(e_metrics), "--validation-target", layer3.target,
        ),
        e_port,
        "chimera.v1.ExecutionService",
        e_metrics,
    )
    with tempfile.TemporaryDirectory() as run_dir, ProcessStack(Path(run_dir)) as stack:
        stack.start([layer3, layer4])
        with grpc.insecure_channel(layer3.target) as vchannel, grpc.insecure_channel(layer4.target) as channel:
            wasm = runfile(KERNEL).read_bytes()
            verdict = validation_pb2_grpc.ValidationServiceStub(vchannel).ValidateModule(
                validation_pb2.ValidateModuleRequest(module_name="packer", wasm=wasm), timeout=30
            )
            assert verdict.is_valid, list(verdict.findings)
            stub = execution_pb2_grpc.ExecutionServiceStub(channel)
            first = stub.DeployModule(
                execution_pb2.DeployModuleRequest(
                    module_name="packer", wasm=wasm, verdict_id=verdict.verdict_id, activate=True
                ),
                timeout=30,
            )
            assert first.version == 1
            yield layer4.target, stub


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
