"""Goal -> plan -> verdicts -> execution, across four real services on loopback.

1. Planning asks Discovery (over gRPC) for the host's capacity and plans
   the goal "deploy and run the packer module" from its template.
2. Validation checks the plan, then vets the execution kernel's WASM.
3. Execution admits the module only with that verdict (its gate calls
   ValidationService.GetVerdict over gRPC and compares digests), deploys a
   genome, and runs the plan's run_module task on a packing instance.
4. The gate refuses tampered bytes and plan verdicts.
5. Bad work stops at the layer that owns the rule: a dependency cycle at
   planning, an over-limit plan at validation, a forbidden import at
   validation (and again at execution's own byte check).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
import wasmtime

from chimera.discovery.config import DiscoveryConfig
from chimera.discovery.main import build_server as build_discovery
from chimera.execution.artifacts import kernel_wasm_bytes
from chimera.execution.gate import VerdictGate
from chimera.plans.executor import PlanError, PlanExecutor, PlanRun
from chimera.plans.operations import ModuleOperations
from chimera.execution.main import build_server as build_execution
from chimera.execution.options import ExecutionOptions
from chimera.execution.workload import GOOD_GENOME, generate_instance
from chimera.framework import ServerConfig
from chimera.planning.main import Options, build_server as build_planning
from chimera.validation.main import build_server as build_validation
from chimera.validation.policy import Policy
from chimera.v1 import (
    common_pb2,
    discovery_pb2_grpc,
    execution_pb2,
    execution_pb2_grpc,
    planning_pb2,
    planning_pb2_grpc,
    validation_pb2,
    validation_pb2_grpc,
)

LOOPBACK = ServerConfig(port=0, metrics_port=None)


@dataclass
class Stack:
    discovery: discovery_pb2_grpc.DiscoveryServiceStub
    planning: planning_pb2_grpc.PlanningServiceStub
    validation: validation_pb2_grpc.ValidationServiceStub
    execution: execution_pb2_grpc.ExecutionServiceStub


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    config = DiscoveryConfig.from_mapping({"collection_interval_ms": 0})
    discovery = build_discovery(LOOPBACK, config)
    validation = build_validation(LOOPBACK, Policy.load())
    with discovery, validation:
        planning = build_planning(LOOPBACK, Options(discovery_target=discovery.target))
        execution = build_execution(LOOPBACK, ExecutionOptions(), VerdictGate(validation.target))
        with planning, execution:
            servers = (discovery, planning, validation, execution)
            channels = [grpc.insecure_channel(s.target) for s in servers]
            try:
                yield Stack(
                    discovery_pb2_grpc.DiscoveryServiceStub(channels[0]),
                    planning_pb2_grpc.PlanningServiceStub(channels[1]),
                    validation_pb2_grpc.ValidationServiceStub(channels[2]),
                    execution_pb2_grpc.ExecutionServiceStub(channels[3]),
                )
            finally:
                for channel in channels:
                    channel.close()


def test_goal_to_execution(stack: Stack) -> None:
    # 1 -> 2: planning sizes the plan from discovery's measurement of this host.
    goal = planning_pb2.Goal(
        description="Deploy and run the packer module",
        priority=common_pb2.PRIORITY_HIGH,
        constraints=planning_pb2.GoalConstraints(extra={"module_name": "packer"}),
    )
    plan = stack.planning.CreatePlan(planning_pb2.CreatePlanRequest(goal=goal), timeout=30)
    assert [t.id for t in plan.tasks] == [
        "validate_module", "deploy_module", "run_module", "collect_kpis",
    ]
    assert "capacity.unknown" not in {r.id for r in plan.risks}
    usable = len(os.sched_getaffinity(0))
    assert plan.tasks[0].resource_requirements.cpu_cores == float(usable)

    # 2 -> 3: the plan passes policy; its verdict is kept under its digest.
    plan_verdict = stack.validation.ValidatePlan(
        validation_pb2.ValidatePlanRequest(plan=plan, context={"requested_by": "flow_test"})
    )
    assert plan_verdict.is_valid, list(plan_verdict.findings)
    assert plan_verdict.subject_id == plan.id
    assert plan_verdict.subject_sha256 == hashlib.sha256(
        plan.SerializeToString(deterministic=True)
    ).hexdigest()

    # 3 -> 4: the plan's tasks, in dependency order, drive the module through the gate.
    wasm = kernel_wasm_bytes()
    module = ModuleOperations(
        stack.validation,
        stack.execution,
        wasm,
        instance=lambda task: generate_instance(5, 12).encode(),
        context={"requested_by": "flow_test"},
    )

    def deploy_with_genome(task: planning_pb2.Task, run: PlanRun) -> execution_pb2.Deployment:
        deployment = module.deploy_module(task, run)
        genome = stack.execution.DeployGenome(
            execution_pb2.DeployGenomeRequest(
                module_name=module.module_name(task),
                genome=common_pb2.AgentGenome(id="g-good", agent_id="flow", parameters=GOOD_GENOME),
            )
        )
        assert genome.active and genome.verdict_id == deployment.verdict_id
        return deployment

    run = PlanExecutor({**module.mapping(), "deploy_module": deploy_with_genome}).run(plan)
    assert list(run.results) == ["validate_module", "deploy_module", "run_module", "collect_kpis"]
    module_verdict = run.value("validate_module")
    assert module_verdict.module_facts.size_bytes == len(wasm)
    assert "chimera_run" in module_verdict.module_facts.exports
    assert list(module_verdict.module_facts.imports) == []
    assert run.value("deploy_module").module_sha256 == module_verdict.subject_sha256
    assert run.value("run_module").status == common_pb2.TASK_STATUS_SUCCEEDED
    kpi = run.value("collect_kpis")
    assert kpi.genome_id == "g-good" and kpi.module_name == "packer"
    assert kpi.fuel_consumed > 0 and "quality" in kpi.metrics


def test_an_operation_no_layer_implements_stops_the_plan_before_it_runs(stack: Stack) -> None:
    plan = stack.planning.CreatePlan(
        planning_pb2.CreatePlanRequest(
            goal=planning_pb2.Goal(description="Improve the packer genome by evolution")
        ),
        timeout=30,
    )
    executed: list[str] = []

    def record(task: planning_pb2.Task, run: PlanRun) -> None:
        executed.append(task.id)

    executor = PlanExecutor({op: record for op in ("collect", "validate_module", "run_module")})
    with pytest.raises(PlanError, match=r"task 'analyze' needs operation 'analyze_kpis'"):
        executor.run(plan)
    assert executed == []


def test_gate_refuses_tampered_bytes_and_plan_verdicts(stack: Stack) -> None:
    wasm = kernel_wasm_bytes()
    verdict = stack.validation.ValidateModule(
        validation_pb2.ValidateModuleRequest(module_name="packer2", wasm=wasm)
    )
    assert verdict.is_valid
    tampered = wasm + b"\0\x05\x04junk"  # a trailing custom section: still valid WASM
    with pytest.raises(grpc.RpcError) as err:
        stack.execution.DeployModule(
            execution_pb2.DeployModuleRequest(
                module_name="packer2", wasm=tampered, verdict_id=verdict.verdict_id
            )
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SHA-256" in err.value.details()

    plan = stack.planning.CreatePlan(
        planning_pb2.CreatePlanRequest(goal=planning_pb2.Goal(description="benchmark it"))
    )
    plan_verdict = stack.validation.ValidatePlan(validation_pb2.ValidatePlanRequest(plan=plan))
    with pytest.raises(grpc.RpcError) as err:
        stack.execution.DeployModule(
            execution_pb2.DeployModuleRequest(
                module_name="packer2", wasm=wasm, verdict_id=plan_verdict.verdict_id
            )
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "plan verdict" in err.value.details()


def test_invalid_module_verdict_is_refused(stack: Stack) -> None:
    # Bytes layer 4 would accept on its own, but layer 3 says no (a required export is missing).
    wasm = kernel_wasm_bytes()
    verdict = stack.validation.ValidateModule(
        validation_pb2.ValidateModuleRequest(
            module_name="strict", wasm=wasm, required_exports=["optimize_v2"]
        )
    )
    assert not verdict.is_valid
    assert [f.rule for f in verdict.findings if f.severity == common_pb2.SEVERITY_CRITICAL] == [
        "module.missing_export"
    ]
    with pytest.raises(grpc.RpcError) as err:
        stack.execution.DeployModule(
            execution_pb2.DeployModuleRequest(
                module_name="strict", wasm=wasm, verdict_id=verdict.verdict_id
            )
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not valid" in err.value.details() and "module.missing_export" in err.value.details()


def _caller_task(task_id: str, *deps: str, memory_bytes: int = 0) -> planning_pb2.Task:
    return planning_pb2.Task(
        id=task_id,
        title=f"task {task_id}",
        operation="run_module",
        estimated_duration_ms=1000,
        dependencies=list(deps),
        resource_requirements=common_pb2.ResourceRequirements(memory_bytes=memory_bytes),
    )


def test_cycle_is_stopped_at_planning(stack: Stack) -> None:
    request = planning_pb2.CreatePlanRequest(
        goal=planning_pb2.Goal(description="run three steps"),
        tasks=[_caller_task("a", "c"), _caller_task("b", "a"), _caller_task("c", "b")],
    )
    with pytest.raises(grpc.RpcError) as err:
        stack.planning.CreatePlan(request, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cycle" in err.value.details()
    assert all(node in err.value.details() for node in ("a", "b", "c"))


def test_over_limit_plan_is_stopped_at_validation(stack: Stack) -> None:
    # Planning accepts what the caller asks for; layer 3's policy caps a task at 64 GiB.
    plan = stack.planning.CreatePlan(
        planning_pb2.CreatePlanRequest(
            goal=planning_pb2.Goal(description="one huge task"),
            tasks=[_caller_task("huge", memory_bytes=128 << 30)],
        ),
        timeout=30,
    )
    verdict = stack.validation.ValidatePlan(validation_pb2.ValidatePlanRequest(plan=plan))
    assert not verdict.is_valid
    critical = [f for f in verdict.findings if f.severity == common_pb2.SEVERITY_CRITICAL]
    assert "plan.task_resources_exceed" in [f.rule for f in critical], list(verdict.findings)
    assert any("huge" in f.message for f in critical)


def test_forbidden_import_is_stopped_at_validation_and_execution(stack: Stack) -> None:
    escape = """
        (module
          (import "env" "system" (func $system (param i32)))
          (memory (export "memory") 1)
          (func (export "chimera_run") (result i32)
            (call $system (i32.const 0))
            (i32.const 0)))
    """
    wasm = bytes(wasmtime.wat2wasm(escape))
    verdict = stack.validation.ValidateModule(
        validation_pb2.ValidateModuleRequest(module_name="escape", wasm=wasm)
    )
    assert not verdict.is_valid
    assert "module.import_not_allowed" in [f.rule for f in verdict.findings]
    with pytest.raises(grpc.RpcError) as err:
        stack.execution.DeployModule(
            execution_pb2.DeployModuleRequest(
                module_name="escape", wasm=wasm, verdict_id=verdict.verdict_id
            )
        )
    # Layer 4 checks the bytes itself before it asks layer 3: an import outside its
    # allow-list is refused there and then, naming the import.
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "env" in err.value.details() and "system" in err.value.details()
