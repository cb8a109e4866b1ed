"""ValidationService on a real loopback server: behaviour and bad input."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import grpc
import pytest
import wasmtime

from chimera.framework import ServerConfig
from chimera.validation.main import build_server, parse_args
from chimera.validation.policy import Policy
from chimera.v1 import common_pb2, planning_pb2, validation_pb2, validation_pb2_grpc

PASSED = validation_pb2.CHECK_STATUS_PASSED
WARNING = validation_pb2.CHECK_STATUS_WARNING
FAILED = validation_pb2.CHECK_STATUS_FAILED

POLICY = {
    "plan": {
        "forbidden_operations": ["shell_exec"],
        "max_tasks": 10,
        "max_task_cpu_cores": 8,
        "max_layer_cpu_cores": 16,
        "max_total_duration_ms": 100000,
        "warn_risk_score": 2.5,
        "max_risk_score": 4.5,
    },
    "module": {
        "allowed_imports": ["env.log"],
        "max_memory_pages": 16,
        "require_memory_max": True,
        "max_size_bytes": 100000,
        "required_exports": ["memory"],
    },
}

GOOD_WAT = '(module (import "env" "log" (func (param i32))) (memory (export "memory") 1 4)' \
    ' (func (export "run") (result i32) (i32.const 1)))'


@pytest.fixture(scope="module")
def stub() -> Iterator[validation_pb2_grpc.ValidationServiceStub]:
    server = build_server(ServerConfig(port=0, metrics_port=None), Policy.from_mapping(POLICY))
    with server, grpc.insecure_channel(server.target) as channel:
        yield validation_pb2_grpc.ValidationServiceStub(channel)


def task(
    tid: str, ms: int, *deps: str, op: str = "run_module", cpu: float = 1
) -> planning_pb2.Task:
    return planning_pb2.Task(
        id=tid, title=tid, estimated_duration_ms=ms, dependencies=list(deps), operation=op,
        assigned_layer=common_pb2.LAYER_EXECUTION,
        resource_requirements=common_pb2.ResourceRequirements(cpu_cores=cpu),
    )


def good_plan() -> planning_pb2.Plan:
    """a(1000) -> b(2000); c(500) alone: scheduled as a planner would."""
    return planning_pb2.Plan(
        id="plan-1",
        goal=planning_pb2.Goal(id="goal-1", description="demo"),
        tasks=[task("a", 1000), task("c", 500), task("b", 2000, "a")],
        timeline=[
            planning_pb2.TimelineEntry(task_id="a", start_offset_ms=0, end_offset_ms=1000,
                                       on_critical_path=True),
            planning_pb2.TimelineEntry(task_id="c", start_offset_ms=0, end_offset_ms=500,
                                       slack_ms=2500),
            planning_pb2.TimelineEntry(task_id="b", start_offset_ms=1000, end_offset_ms=3000,
                                       on_critical_path=True),
        ],
        critical_path=["a", "b"],
        total_duration_ms=3000,
        risks=[planning_pb2.Risk(id="schedule.critical_path", description="two critical tasks",
                                 probability=0.19, impact=3, score=0.57)],
        resource_allocations=[planning_pb2.LayerAllocation(
            layer=common_pb2.LAYER_EXECUTION,
            peak_requirements=common_pb2.ResourceRequirements(cpu_cores=2))],
        revision=1,
    )


def validate_plan(stub: validation_pb2_grpc.ValidationServiceStub,
                  plan: planning_pb2.Plan) -> validation_pb2.ValidationResult:
    return stub.ValidatePlan(validation_pb2.ValidatePlanRequest(plan=plan), timeout=10)


def rules(result: validation_pb2.ValidationResult) -> list[str]:
    return [f.rule for f in result.findings]


def test_a_good_plan_passes_and_is_kept(stub: validation_pb2_grpc.ValidationServiceStub) -> None:
    plan = good_plan()
    result = stub.ValidatePlan(
        validation_pb2.ValidatePlanRequest(plan=plan, context={"requested_by": "test"})
    )
    assert result.is_valid, list(result.findings)
    assert (result.safety_status, result.integrity_status, result.compliance_status) == (
        PASSED, PASSED, PASSED
    )
    assert result.operation_type == validation_pb2.OPERATION_TYPE_PLAN
    assert result.subject_id == "plan-1"
    assert result.subject_sha256 == hashlib.sha256(
        plan.SerializeToString(deterministic=True)
    ).hexdigest()
    assert result.risk_assessment.level == validation_pb2.RISK_LEVEL_LOW
    assert result.risk_assessment.score == pytest.approx(0.57)
    assert result.risk_assessment.factors[0].startswith("schedule.critical_path")
    assert result.validation_time_ms > 0 and result.validated_at.seconds > 0
    assert not result.recommendations
    stored = stub.GetVerdict(validation_pb2.GetVerdictRequest(verdict_id=result.verdict_id))
    assert stored == result


def test_forbidden_operation_fails_safety(stub: validation_pb2_grpc.ValidationServiceStub) -> None:
    plan = good_plan()
    plan.tasks[1].operation = "SHELL_EXEC"
    result = validate_plan(stub, plan)
    assert not result.is_valid
    assert result.safety_status == FAILED and result.compliance_status == PASSED
    assert result.findings[0].rule == "plan.forbidden_operation"
    assert result.findings[0].location == "c"
    assert result.risk_assessment.level == validation_pb2.RISK_LEVEL_CRITICAL
    assert any("task c" in r for r in result.recommendations)


def test_dependency_cycle_and_timeline_fail_integrity(
    stub: validation_pb2_grpc.ValidationServiceStub,
) -> None:
    plan = good_plan()
    plan.tasks[0].dependencies.append("b")  # a <-> b
    plan.timeline[2].start_offset_ms = 500  # b now starts before a ends
    plan.critical_path.append("ghost")
    result = validate_plan(stub, plan)
    assert not result.is_valid and result.integrity_status == FAILED
    found = rules(result)
    assert "plan.dependency_cycle" in found and "plan.timeline_order" in found
    assert "plan.critical_path_unknown_task" in found
    cycle = next(f for f in result.findings if f.rule == "plan.dependency_cycle")
    assert cycle.message.startswith("dependency cycle: a -> b -> a")


def test_resource_duration_and_risk_limits_fail_compliance(
    stub: validation_pb2_grpc.ValidationServiceStub,
) -> None:
    plan = good_plan()
    plan.tasks[0].resource_requirements.cpu_cores = 32
    plan.resource_allocations[0].peak_requirements.cpu_cores = 40
    plan.total_duration_ms = 200000
    plan.goal.constraints.max_duration_ms = 1000
    plan.risks.append(planning_pb2.Risk(id="deadline", description="late", probability=1,
                                        impact=5, score=5))
    plan.risks.append(planning_pb2.Risk(id="meh", description="meh", probability=0.6,
                                        impact=5, score=1))
    result = validate_plan(stub, plan)
    assert not result.is_valid and result.compliance_status == FAILED
    found = rules(result)
    for rule in ("plan.task_resources_exceed", "plan.layer_resources_exceed",
                 "plan.duration_exceeds_limit", "plan.goal_duration_exceeded",
                 "plan.risk_too_high", "plan.risk_elevated", "plan.risk_score_mismatch",
                 "plan.total_duration_mismatch"):
        assert rule in found, rule
    assert result.integrity_status == WARNING  # only warnings there
    assert result.risk_assessment.score == 5.0
    severities = [f.severity for f in result.findings]
    assert severities == sorted(severities, reverse=True)


def test_warnings_leave_a_plan_valid(stub: validation_pb2_grpc.ValidationServiceStub) -> None:
    plan = good_plan()
    del plan.timeline[:]
    plan.risks[0].probability, plan.risks[0].score = 1.0, 3.0
    result = validate_plan(stub, plan)
    assert result.is_valid
    assert result.integrity_status == WARNING and result.compliance_status == WARNING
    assert set(rules(result)) == {"plan.timeline_missing", "plan.risk_elevated"}
    assert result.risk_assessment.level == validation_pb2.RISK_LEVEL_HIGH


def validate_module(stub: validation_pb2_grpc.ValidationServiceStub, wasm: bytes,
                    **kw: object) -> validation_pb2.ValidationResult:
    return stub.ValidateModule(
        validation_pb2.ValidateModuleRequest(module_name="packer", wasm=bytes(wasm), **kw),
        timeout=10,
    )


def test_a_good_module_passes_with_facts(stub: validation_pb2_grpc.ValidationServiceStub) -> None:
    wasm = wasmtime.wat2wasm(GOOD_WAT)
    digest = hashlib.sha256(wasm).hexdigest()
    result = validate_module(stub, wasm, expected_sha256=digest, required_exports=["run"])
    assert result.is_valid, list(result.findings)
    assert result.subject_sha256 == digest and result.subject_id == "packer"
    facts = result.module_facts
    assert facts.size_bytes == len(wasm)
    assert list(facts.imports) == ["env.log"] and list(facts.exports) == ["run"]
    assert facts.memory_min_pages == 1 and facts.memory_max_pages == 4
    assert result.operation_type == validation_pb2.OPERATION_TYPE_MODULE
    assert stub.GetVerdict(validation_pb2.GetVerdictRequest(verdict_id=result.verdict_id)) == result


@pytest.mark.parametrize(
    ("wat", "kw", "rule", "family"),
    [
        ('(module (import "wasi_snapshot_preview1" "fd_write" (func))'
         ' (memory (export "memory") 1 1))',
         {}, "module.import_not_allowed", "safety_status"),
        ('(module (memory (export "memory") 1 64))', {}, "module.memory_exceeds_limit",
         "safety_status"),
        ('(module (memory (export "memory") 1))', {}, "module.memory_max_missing",
         "safety_status"),
        ('(module (memory 1 1))', {}, "module.missing_export", "compliance_status"),
        ('(module (memory (export "memory") 1 1))', {"required_exports": ["run"]},
         "module.missing_export", "compliance_status"),
        ('(module (memory (export "memory") 1 1))', {"expected_sha256": "0" * 64},
         "module.digest_mismatch", "integrity_status"),
    ],
)
def test_each_module_rule_makes_the_module_invalid(
    stub: validation_pb2_grpc.ValidationServiceStub, wat: str, kw: dict[str, object], rule: str,
    family: str,
) -> None:
    result = validate_module(stub, wasmtime.wat2wasm(wat), **kw)
    assert not result.is_valid
    assert rules(result) == [rule]
    assert getattr(result, family) == FAILED
    assert result.recommendations


def test_garbage_and_oversized_modules(stub: validation_pb2_grpc.ValidationServiceStub) -> None:
    result = validate_module(stub, b"#!/bin/sh\nrm -rf /\n")
    assert not result.is_valid and rules(result) == ["module.parse_error"]
    assert result.integrity_status == FAILED
    assert not result.module_facts.HasField("memory_max_pages")
    big = wasmtime.wat2wasm('(module (memory (export "memory") 1 1) (data (i32.const 0) "'
                            + "x" * 100001 + '"))')
    result = validate_module(stub, big)
    assert rules(result) == ["module.too_large"] and result.compliance_status == FAILED


def test_unknown_verdict_is_not_found(stub: validation_pb2_grpc.ValidationServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetVerdict(validation_pb2.GetVerdictRequest(verdict_id="verdict-nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


BAD = [
    ("ValidatePlan", validation_pb2.ValidatePlanRequest(), "plan"),
    ("ValidatePlan", validation_pb2.ValidatePlanRequest(plan=planning_pb2.Plan(
        tasks=[planning_pb2.Task(id="a", title="a")])), "plan.goal"),
    ("ValidatePlan", validation_pb2.ValidatePlanRequest(plan=planning_pb2.Plan(
        goal=planning_pb2.Goal(description="x"))), "plan.tasks"),
    ("ValidatePlan", validation_pb2.ValidatePlanRequest(plan=planning_pb2.Plan(
        goal=planning_pb2.Goal(description="x"), tasks=[planning_pb2.Task(title="a")])),
     "plan.tasks[0].id"),
    ("ValidatePlan", validation_pb2.ValidatePlanRequest(plan=planning_pb2.Plan(
        goal=planning_pb2.Goal(description="x"), tasks=[planning_pb2.Task(id="a", title="a")],
        risks=[planning_pb2.Risk(probability=2, impact=1)])), "plan.risks[0].probability"),
    ("ValidatePlan", validation_pb2.ValidatePlanRequest(plan=planning_pb2.Plan(
        goal=planning_pb2.Goal(description="x"), tasks=[planning_pb2.Task(id="a", title="a")],
        risks=[planning_pb2.Risk(probability=0.5, impact=0)])), "plan.risks[0].impact"),
    ("ValidateModule", validation_pb2.ValidateModuleRequest(wasm=b"\0asm"), "module_name"),
    ("ValidateModule", validation_pb2.ValidateModuleRequest(module_name="m"), "wasm"),
    ("ValidateModule", validation_pb2.ValidateModuleRequest(
        module_name="m", wasm=b"\0asm", expected_sha256="ABC"), "expected_sha256"),
    ("ValidateModule", validation_pb2.ValidateModuleRequest(
        module_name="m", wasm=b"\0asm", expected_sha256="A" * 64), "expected_sha256"),
    ("ValidateModule", validation_pb2.ValidateModuleRequest(
        module_name="m", wasm=b"\0asm", required_exports=["ok", ""]), "required_exports[1]"),
    ("ValidateModule", validation_pb2.ValidateModuleRequest(
        module_name="m", wasm=b"\0asm", required_exports=["e"] * 65), "required_exports"),
    ("ValidateModule", validation_pb2.ValidateModuleRequest(
        module_name="m" * 129, wasm=b"\0asm"), "module_name"),
    ("GetVerdict", validation_pb2.GetVerdictRequest(), "verdict_id"),
    ("GetVerdict", validation_pb2.GetVerdictRequest(verdict_id="v" * 129), "verdict_id"),
]


@pytest.mark.parametrize(("method", "request_", "field"), BAD)
def test_bad_input_is_invalid_argument_naming_the_field(
    stub: validation_pb2_grpc.ValidationServiceStub, method: str, request_: object, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        getattr(stub, method)(request_, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"'{field}'" in err.value.details()


def test_module_over_the_contract_limit_is_rejected(
    stub: validation_pb2_grpc.ValidationServiceStub,
) -> None:
    with pytest.raises(grpc.RpcError) as err:
        validate_module(stub, b"\0" * 4_000_001)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'wasm'" in err.value.details()


def test_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYER3_MAX_WORKERS", "2")
    config, policy = parse_args(["--policy", "/tmp/p.json", "--metrics-port", "0"])
    assert (config.port, config.max_workers, config.metrics_port) == (50053, 2, 0)
    assert str(policy) == "/tmp/p.json"
