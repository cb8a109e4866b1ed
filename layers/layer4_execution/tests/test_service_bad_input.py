"""Bad input for every ExecutionService RPC: INVALID_ARGUMENT naming the field, no traceback."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import grpc
import pytest

import guests
from chimera.v1 import common_pb2, execution_pb2
from service_support import Harness, running

E = execution_pb2
C = common_pb2


@pytest.fixture(scope="module")
def h() -> Harness:
    with running() as harness:
        harness.deploy("ok", guests.OK_GUEST)
        yield harness  # type: ignore[misc]


def genome(**kw: Any) -> C.AgentGenome:
    base: dict[str, Any] = {"id": "g", "agent_id": "a", "parameters": [1.0, 2.0]}
    base.update(kw)
    return C.AgentGenome(**base)


CASES: list[tuple[str, str, Any, str]] = [
    # (id, rpc, request, field named in the message)
    (
        "deploy-no-name",
        "DeployModule",
        E.DeployModuleRequest(wasm=b"\0asm", verdict_id="v"),
        "module_name",
    ),
    (
        "deploy-long-name",
        "DeployModule",
        E.DeployModuleRequest(module_name="n" * 129, wasm=b"\0asm", verdict_id="v"),
        "module_name",
    ),
    (
        "deploy-bad-name",
        "DeployModule",
        E.DeployModuleRequest(module_name="../etc", wasm=b"\0asm", verdict_id="v"),
        "module_name",
    ),
    (
        "deploy-no-wasm",
        "DeployModule",
        E.DeployModuleRequest(module_name="m", verdict_id="v"),
        "wasm",
    ),
    (
        "deploy-no-verdict",
        "DeployModule",
        E.DeployModuleRequest(module_name="m", wasm=b"\0asm"),
        "verdict_id",
    ),
    (
        "deploy-bad-magic",
        "DeployModule",
        E.DeployModuleRequest(module_name="m", wasm=b"MZ" + bytes(30), verdict_id="v"),
        "wasm",
    ),
    ("genome-no-name", "DeployGenome", E.DeployGenomeRequest(genome=genome()), "module_name"),
    ("genome-missing", "DeployGenome", E.DeployGenomeRequest(module_name="ok"), "genome"),
    (
        "genome-no-agent",
        "DeployGenome",
        E.DeployGenomeRequest(module_name="ok", genome=genome(agent_id="")),
        "genome.agent_id",
    ),
    (
        "genome-nan",
        "DeployGenome",
        E.DeployGenomeRequest(module_name="ok", genome=genome(parameters=[1.0, math.nan])),
        "genome.parameters[1]",
    ),
    (
        "genome-inf-hyper",
        "DeployGenome",
        E.DeployGenomeRequest(module_name="ok", genome=genome(hyperparameters={"t": math.inf})),
        "genome.hyperparameters",
    ),
    (
        "genome-names-mismatch",
        "DeployGenome",
        E.DeployGenomeRequest(module_name="ok", genome=genome(parameter_names=["only_one"])),
        "genome.parameter_names",
    ),
    (
        "genome-bad-sha",
        "DeployGenome",
        E.DeployGenomeRequest(module_name="ok", genome=genome(), module_sha256="XYZ"),
        "module_sha256",
    ),
    (
        "genome-mutation-rate",
        "DeployGenome",
        E.DeployGenomeRequest(
            module_name="ok", genome=genome(metadata=C.GenomeMetadata(mutation_rate=2.0))
        ),
        "genome.metadata.mutation_rate",
    ),
    ("rollback-no-name", "RollbackGenome", E.RollbackGenomeRequest(), "module_name"),
    ("list-no-name", "ListVersions", E.ListVersionsRequest(), "module_name"),
    ("list-limit", "ListVersions", E.ListVersionsRequest(module_name="ok", limit=10001), "limit"),
    ("submit-no-module", "SubmitTask", E.TaskSpec(), "module_name"),
    ("submit-long-id", "SubmitTask", E.TaskSpec(module_name="ok", task_id="t" * 129), "task_id"),
    ("submit-priority", "SubmitTask", E.TaskSpec(module_name="ok", priority=42), "priority"),
    ("submit-retries", "SubmitTask", E.TaskSpec(module_name="ok", max_retries=4), "max_retries"),
    (
        "submit-fuel",
        "SubmitTask",
        E.TaskSpec(module_name="ok", limits=E.ExecutionLimits(fuel=10**13)),
        "limits.fuel",
    ),
    (
        "submit-memory-small",
        "SubmitTask",
        E.TaskSpec(module_name="ok", limits=E.ExecutionLimits(memory_bytes=100)),
        "limits.memory_bytes",
    ),
    (
        "submit-memory-big",
        "SubmitTask",
        E.TaskSpec(module_name="ok", limits=E.ExecutionLimits(memory_bytes=2**33)),
        "limits.memory_bytes",
    ),
    (
        "submit-timeout",
        "SubmitTask",
        E.TaskSpec(module_name="ok", limits=E.ExecutionLimits(timeout_ms=600_001)),
        "limits.timeout_ms",
    ),
    (
        "submit-labels",
        "SubmitTask",
        E.TaskSpec(module_name="ok", labels={f"k{i}": "v" for i in range(33)}),
        "labels",
    ),
    ("submit-label-key", "SubmitTask", E.TaskSpec(module_name="ok", labels={"": "v"}), "labels"),
    (
        "submit-entrypoint",
        "SubmitTask",
        E.TaskSpec(module_name="ok", entrypoint="no_such_export"),
        "entrypoint",
    ),
    (
        "submit-entrypoint-sig",
        "SubmitTask",
        E.TaskSpec(module_name="ok", entrypoint="chimera_alloc"),
        "entrypoint",
    ),
    ("get-no-id", "GetTask", E.GetTaskRequest(), "task_id"),
    ("get-long-id", "GetTask", E.GetTaskRequest(task_id="x" * 129), "task_id"),
    ("cancel-no-id", "CancelTask", E.CancelTaskRequest(), "task_id"),
    ("dead-limit", "ListDeadLetters", E.ListDeadLettersRequest(limit=10001), "limit"),
    ("stream-module", "StreamKpis", E.StreamKpisRequest(module_name="m" * 129), "module_name"),
    ("stream-agent", "StreamKpis", E.StreamKpisRequest(agent_id="a" * 129), "agent_id"),
    ("batch-no-module", "EvaluateBatch", E.EvaluateBatchRequest(), "module_name"),
    (
        "batch-no-genomes",
        "EvaluateBatch",
        E.EvaluateBatchRequest(module_name="ok", inputs=[b"x"]),
        "genomes",
    ),
    (
        "batch-no-inputs",
        "EvaluateBatch",
        E.EvaluateBatchRequest(module_name="ok", genomes=[genome()]),
        "inputs",
    ),
    (
        "batch-genomes-257",
        "EvaluateBatch",
        E.EvaluateBatchRequest(module_name="ok", genomes=[genome()] * 257, inputs=[b"x"]),
        "genomes",
    ),
    (
        "batch-inputs-65",
        "EvaluateBatch",
        E.EvaluateBatchRequest(module_name="ok", genomes=[genome()], inputs=[b"x"] * 65),
        "inputs",
    ),
    (
        "batch-pairs-4160",  # both lists within their caps, their product above 4096
        "EvaluateBatch",
        E.EvaluateBatchRequest(module_name="ok", genomes=[genome()] * 65, inputs=[b"x"] * 64),
        "genomes",
    ),
    (
        "batch-input-bytes",  # 2 x 2,000,100 bytes: under the 4 MiB message cap, over 4,000,000
        "EvaluateBatch",
        E.EvaluateBatchRequest(
            module_name="ok", genomes=[genome()], inputs=[bytes(2_000_100)] * 2
        ),
        "inputs",
    ),
    (
        "batch-nan-gene",
        "EvaluateBatch",
        E.EvaluateBatchRequest(
            module_name="ok", genomes=[genome(), genome(parameters=[math.nan])], inputs=[b"x"]
        ),
        "genomes[1].parameters",
    ),
    (
        "batch-timeout",
        "EvaluateBatch",
        E.EvaluateBatchRequest(
            module_name="ok", genomes=[genome()], inputs=[b"x"], batch_timeout_ms=120_001
        ),
        "batch_timeout_ms",
    ),
    (
        "batch-memory",
        "EvaluateBatch",
        E.EvaluateBatchRequest(
            module_name="ok",
            genomes=[genome()],
            inputs=[b"x"],
            limits=E.ExecutionLimits(memory_bytes=100),
        ),
        "limits.memory_bytes",
    ),
    (
        "batch-sha",
        "EvaluateBatch",
        E.EvaluateBatchRequest(
            module_name="ok", genomes=[genome()], inputs=[b"x"], module_sha256="XYZ"
        ),
        "module_sha256",
    ),
    (
        "batch-id",
        "EvaluateBatch",
        E.EvaluateBatchRequest(module_name="ok", genomes=[genome()], inputs=[b"x"], batch_id="a/b"),
        "batch_id",
    ),
    (
        "batch-entrypoint",
        "EvaluateBatch",
        E.EvaluateBatchRequest(
            module_name="ok", genomes=[genome()], inputs=[b"x"], entrypoint="no_such_export"
        ),
        "entrypoint",
    ),
    # Every request naming a slot: the name rule is execution.proto's `pattern`, checked once.
    ("genome-bad-name", "DeployGenome", E.DeployGenomeRequest(module_name="a/b", genome=genome()), "module_name"),
    ("rollback-bad-name", "RollbackGenome", E.RollbackGenomeRequest(module_name=".hidden"), "module_name"),
    ("list-bad-name", "ListVersions", E.ListVersionsRequest(module_name="with space"), "module_name"),
    ("submit-bad-name", "SubmitTask", E.TaskSpec(module_name="-flag"), "module_name"),
    (
        "batch-bad-name",
        "EvaluateBatch",
        E.EvaluateBatchRequest(module_name="../etc", genomes=[genome()], inputs=[b"x"]),
        "module_name",
    ),
]


@pytest.mark.parametrize("rpc, request_, field", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_invalid_argument_naming_the_field(
    h: Harness, rpc: str, request_: Any, field: str
) -> None:
    method: Callable[..., Any] = getattr(h.stub, rpc)
    with pytest.raises(grpc.RpcError) as exc:
        result = method(request_, timeout=10)
        if rpc == "StreamKpis":
            next(iter(result))
    code = exc.value.code()  # type: ignore[attr-defined]
    details = exc.value.details()  # type: ignore[attr-defined]
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    assert f"'{field}" in details, details
    assert "Traceback" not in details


def test_every_rpc_has_a_bad_input_case() -> None:
    methods = {m.name for m in E.DESCRIPTOR.services_by_name["ExecutionService"].methods}
    assert {c[1] for c in CASES} == methods


def test_valid_entrypoint_alias_runs(h: Harness) -> None:
    rec = h.wait_terminal(h.submit("ok", entrypoint="chimera_run").task_id)
    assert rec.status == common_pb2.TASK_STATUS_SUCCEEDED
