"""PlanningService on a real loopback server: behaviour and bad input."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import timestamp_pb2

from chimera.framework import ServerConfig
from chimera.planning.main import Options, build_server, parse_args
from chimera.testing.helpers import free_port
from chimera.v1 import common_pb2, discovery_pb2, planning_pb2, planning_pb2_grpc

GIB = 1 << 30


def observations(cores: float = 8, memory: int = 16 * GIB) -> list[discovery_pb2.DataBatch]:
    return [
        discovery_pb2.DataBatch(
            points=[
                discovery_pb2.DataPoint(name="cpu.count.logical", value=cores * 2, unit="count"),
                discovery_pb2.DataPoint(name="cpu.count.usable", value=cores, unit="count"),
                discovery_pb2.DataPoint(name="memory.available", value=memory, unit="bytes"),
                discovery_pb2.DataPoint(name="accelerator.count", value=0, unit="count"),
            ]
        )
    ]


def task(tid: str, ms: int, *deps: str, **kw: object) -> planning_pb2.Task:
    return planning_pb2.Task(
        id=tid, title=tid.upper(), estimated_duration_ms=ms, dependencies=list(deps), **kw
    )


@pytest.fixture(scope="module")
def stub() -> Iterator[planning_pb2_grpc.PlanningServiceStub]:
    # A discovery target nobody listens on: the planner must fall back to defaults.
    options = Options(discovery_target=f"127.0.0.1:{free_port()}", plan_retention=50)
    with build_server(ServerConfig(port=0, metrics_port=None), options) as server:
        with grpc.insecure_channel(server.target) as channel:
            yield planning_pb2_grpc.PlanningServiceStub(channel)


def create(stub: planning_pb2_grpc.PlanningServiceStub, **kw: object) -> planning_pb2.Plan:
    return stub.CreatePlan(planning_pb2.CreatePlanRequest(**kw), timeout=10)


def test_template_plan_is_a_scheduled_dag(stub: planning_pb2_grpc.PlanningServiceStub) -> None:
    goal = planning_pb2.Goal(
        description="Evolve a better packing genome",
        priority=common_pb2.PRIORITY_HIGH,
        constraints=planning_pb2.GoalConstraints(extra={"module_name": "packer"}),
    )
    plan = create(stub, goal=goal, observations=observations(cores=8))
    assert plan.id.startswith("plan-") and plan.goal.id.startswith("goal-")
    assert plan.revision == 1 and not plan.parent_plan_id
    ids = [t.id for t in plan.tasks]
    assert ids[0] in ("observe", "validate_module") and ids[-1] == "verify"
    position = {tid: i for i, tid in enumerate(ids)}
    for t in plan.tasks:  # topological order
        assert all(position[d] < position[t.id] for d in t.dependencies)
        assert t.priority == common_pb2.PRIORITY_HIGH
    assert plan.critical_path == [
        "observe", "baseline", "analyze", "select_strategy", "evolve", "deploy", "verify",
    ]
    ends = {e.task_id: e for e in plan.timeline}
    assert plan.total_duration_ms == max(e.end_offset_ms for e in plan.timeline)
    assert plan.total_duration_ms == 2000 + 30000 + 5000 + 2000 + 120000 + 2000 + 10000
    for tid in plan.critical_path:
        assert ends[tid].on_critical_path and ends[tid].slack_ms == 0
    assert ends["reserve"].slack_ms > 0 and not ends["reserve"].on_critical_path
    starts = [e.start_offset_ms for e in plan.timeline]
    assert starts == sorted(starts)
    by_id = {t.id: t for t in plan.tasks}
    assert by_id["deploy"].parameters["module_name"] == "packer"
    # Level 0 holds observe and validate_module: 8 cores / 2 = 4 each.
    assert by_id["observe"].resource_requirements.cpu_cores == 4.0
    assert by_id["evolve"].resource_requirements.cpu_cores == 8.0
    assert by_id["evolve"].resource_requirements.memory_bytes == 16 * GIB
    layers = {a.layer for a in plan.resource_allocations}
    assert common_pb2.LAYER_GENETICS in layers and common_pb2.LAYER_EXECUTION in layers
    risk_ids = [r.id for r in plan.risks]
    assert "schedule.critical_path" in risk_ids and "capacity.unknown" not in risk_ids
    scores = [r.score for r in plan.risks]
    assert scores == sorted(scores, reverse=True)
    for r in plan.risks:
        assert r.score == pytest.approx(r.probability * r.impact) and 1 <= r.impact <= 5


def test_caller_tasks_parallel_limit_and_sizing(
    stub: planning_pb2_grpc.PlanningServiceStub,
) -> None:
    tasks = [task("a", 1000), task("b", 1000), task("c", 1000), task("d", 500, "a", "b", "c")]
    goal = planning_pb2.Goal(
        description="x", constraints=planning_pb2.GoalConstraints(max_parallel_tasks=2)
    )
    plan = create(stub, goal=goal, tasks=tasks, observations=observations(cores=4))
    timeline = {e.task_id: e for e in plan.timeline}
    assert [timeline[t].start_offset_ms for t in "abcd"] == [0, 0, 1000, 2000]
    assert plan.total_duration_ms == 2500
    assert all(t.priority == common_pb2.PRIORITY_NORMAL for t in plan.tasks)
    assert all(t.assigned_layer == common_pb2.LAYER_EXECUTION for t in plan.tasks)
    # Three tasks share level 0 but only two may run: 4 cores / 2 each.
    assert [t.resource_requirements.cpu_cores for t in plan.tasks[:3]] == [2.0, 2.0, 2.0]
    peak = {a.layer: a.peak_requirements for a in plan.resource_allocations}
    assert peak[common_pb2.LAYER_EXECUTION].cpu_cores == 4.0


def test_cycle_is_rejected_naming_the_cycle(stub: planning_pb2_grpc.PlanningServiceStub) -> None:
    tasks = [task("start", 1), task("x", 1, "z", "start"), task("y", 1, "x"), task("z", 1, "y")]
    with pytest.raises(grpc.RpcError) as err:
        create(stub, goal=planning_pb2.Goal(description="loop"), tasks=tasks)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == "field 'tasks' dependencies form a cycle: x -> y -> z -> x"


def test_deadline_and_resource_risks(stub: planning_pb2_grpc.PlanningServiceStub) -> None:
    goal = planning_pb2.Goal(
        description="x",
        constraints=planning_pb2.GoalConstraints(
            max_duration_ms=1500,
            deadline=timestamp_pb2.Timestamp(seconds=int(time.time()) + 3600),
            max_resources=common_pb2.ResourceRequirements(cpu_cores=1),
        ),
    )
    tasks = [
        task("big", 1000, resource_requirements=common_pb2.ResourceRequirements(cpu_cores=64)),
        task("next", 1000, "big"),
        task("guess", 0),
    ]
    plan = create(stub, goal=goal, tasks=tasks, observations=observations(cores=8))
    risks = {r.id: r for r in plan.risks}
    assert risks["deadline.max_duration"].probability == 1.0
    assert risks["deadline.max_duration"].score == 5.0
    assert risks["resources.task_exceeds_host"].task_ids == ["big"]
    assert risks["resources.goal_limit"].impact == 4
    assert risks["estimate.missing"].task_ids == ["guess"]
    assert "deadline.timestamp" not in risks  # an hour is plenty
    assert plan.risks[0].score == 5.0
    guess = next(t for t in plan.tasks if t.id == "guess")
    assert guess.estimated_duration_ms == 60000
    # max_resources caps the cores used for sizing.
    assert next(t for t in plan.tasks if t.id == "next").resource_requirements.cpu_cores == 1.0


def test_unreachable_discovery_falls_back_to_defaults(
    stub: planning_pb2_grpc.PlanningServiceStub,
) -> None:
    plan = create(stub, goal=planning_pb2.Goal(description="run the module"))
    assert [t.id for t in plan.tasks][0] == "validate_module"
    assert "capacity.unknown" in {r.id for r in plan.risks}
    assert plan.tasks[0].resource_requirements.cpu_cores == 2.0  # default 2-core host


def test_get_and_refine(stub: planning_pb2_grpc.PlanningServiceStub) -> None:
    tasks = [task("a", 1000), task("b", 1000, "a"), task("c", 500)]
    plan = create(stub, goal=planning_pb2.Goal(description="x"), tasks=tasks,
                  observations=observations())
    assert stub.GetPlan(planning_pb2.GetPlanRequest(plan_id=plan.id)) == plan
    refined = stub.RefinePlan(
        planning_pb2.RefinePlanRequest(
            plan_id=plan.id,
            samples=[
                planning_pb2.TaskDurationSample(task_id="c", observed_duration_ms=4000),
                planning_pb2.TaskDurationSample(task_id="c", observed_duration_ms=5000.4),
                planning_pb2.TaskDurationSample(task_id="a", observed_duration_ms=100),
            ],
        )
    )
    assert refined.id != plan.id and refined.parent_plan_id == plan.id
    assert refined.revision == 2 and refined.goal == plan.goal
    durations = {t.id: t.estimated_duration_ms for t in refined.tasks}
    assert durations == {"a": 100, "b": 1000, "c": 4500}
    assert refined.critical_path == ["c"] and refined.total_duration_ms == 4500
    again = stub.RefinePlan(planning_pb2.RefinePlanRequest(
        plan_id=refined.id,
        samples=[planning_pb2.TaskDurationSample(task_id="b", observed_duration_ms=9000)],
    ))
    assert again.revision == 3 and again.critical_path == ["a", "b"]
    assert stub.GetPlan(planning_pb2.GetPlanRequest(plan_id=refined.id)) == refined


def call_error(fn: object, request: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        fn(request, timeout=10)  # type: ignore[operator]
    return err.value


def test_unknown_plan_is_not_found(stub: planning_pb2_grpc.PlanningServiceStub) -> None:
    err = call_error(stub.GetPlan, planning_pb2.GetPlanRequest(plan_id="plan-missing"))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = call_error(stub.RefinePlan, planning_pb2.RefinePlanRequest(
        plan_id="plan-missing",
        samples=[planning_pb2.TaskDurationSample(task_id="a", observed_duration_ms=1)],
    ))
    assert err.code() == grpc.StatusCode.NOT_FOUND


GOAL = planning_pb2.Goal(description="x")
BAD_CREATE = [
    (planning_pb2.CreatePlanRequest(), "goal"),
    (planning_pb2.CreatePlanRequest(goal=planning_pb2.Goal()), "goal.description"),
    (planning_pb2.CreatePlanRequest(goal=planning_pb2.Goal(description="x", priority=7)),
     "goal.priority"),
    (planning_pb2.CreatePlanRequest(goal=planning_pb2.Goal(description="x", id="i" * 129)),
     "goal.id"),
    (planning_pb2.CreatePlanRequest(goal=planning_pb2.Goal(
        description="x", constraints=planning_pb2.GoalConstraints(max_parallel_tasks=10001))),
     "goal.constraints.max_parallel_tasks"),
    (planning_pb2.CreatePlanRequest(goal=planning_pb2.Goal(
        description="x", constraints=planning_pb2.GoalConstraints(extra={"template": "nope"}))),
     "goal.constraints.extra[template]"),
    (planning_pb2.CreatePlanRequest(goal=GOAL, tasks=[planning_pb2.Task(title="t")]),
     "tasks[0].id"),
    (planning_pb2.CreatePlanRequest(goal=GOAL, tasks=[planning_pb2.Task(id="t")]),
     "tasks[0].title"),
    (planning_pb2.CreatePlanRequest(goal=GOAL, tasks=[task("a", 1), task("a", 2)]),
     "tasks[1].id"),
    (planning_pb2.CreatePlanRequest(goal=GOAL, tasks=[task("a", 1), task("b", 1, "a", "zz")]),
     "tasks[1].dependencies[1]"),
    (planning_pb2.CreatePlanRequest(goal=GOAL, tasks=[task("a", 1, priority=3)]),
     "tasks[0].priority"),
    (planning_pb2.CreatePlanRequest(goal=GOAL, tasks=[task("a", 1, assigned_layer=9)]),
     "tasks[0].assigned_layer"),
    (planning_pb2.CreatePlanRequest(goal=GOAL, tasks=[task("a", 31536000001)]),
     "tasks[0].estimated_duration_ms"),
    (planning_pb2.CreatePlanRequest(goal=GOAL, tasks=[task(
        "a", 1, resource_requirements=common_pb2.ResourceRequirements(cpu_cores=-1))]),
     "tasks[0].resource_requirements.cpu_cores"),
    (planning_pb2.CreatePlanRequest(goal=GOAL, tasks=[task(
        "a", 1, resource_requirements=common_pb2.ResourceRequirements(cpu_cores=float("nan")))]),
     "tasks[0].resource_requirements.cpu_cores"),
    (planning_pb2.CreatePlanRequest(goal=GOAL, observations=[discovery_pb2.DataBatch(
        points=[discovery_pb2.DataPoint(name="cpu.count.usable", value=float("inf"))])]),
     "observations[0].points[0].value"),
]


@pytest.mark.parametrize(("request_", "field"), BAD_CREATE)
def test_bad_create_requests(
    stub: planning_pb2_grpc.PlanningServiceStub, request_: object, field: str
) -> None:
    err = call_error(stub.CreatePlan, request_)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"'{field}'" in err.details()


def test_bad_get_and_refine_requests(stub: planning_pb2_grpc.PlanningServiceStub) -> None:
    plan = create(stub, goal=GOAL, tasks=[task("a", 1)])
    cases = [
        (stub.GetPlan, planning_pb2.GetPlanRequest(), "plan_id"),
        (stub.GetPlan, planning_pb2.GetPlanRequest(plan_id="p" * 129), "plan_id"),
        (stub.RefinePlan, planning_pb2.RefinePlanRequest(plan_id=plan.id), "samples"),
        (stub.RefinePlan, planning_pb2.RefinePlanRequest(samples=[
            planning_pb2.TaskDurationSample(task_id="a", observed_duration_ms=1)]), "plan_id"),
        (stub.RefinePlan, planning_pb2.RefinePlanRequest(plan_id=plan.id, samples=[
            planning_pb2.TaskDurationSample(task_id="a", observed_duration_ms=-1)]),
         "samples[0].observed_duration_ms"),
        (stub.RefinePlan, planning_pb2.RefinePlanRequest(plan_id=plan.id, samples=[
            planning_pb2.TaskDurationSample(observed_duration_ms=1)]), "samples[0].task_id"),
        (stub.RefinePlan, planning_pb2.RefinePlanRequest(plan_id=plan.id, samples=[
            planning_pb2.TaskDurationSample(task_id="a", observed_duration_ms=1),
            planning_pb2.TaskDurationSample(task_id="nope", observed_duration_ms=1)]),
         "samples[1].task_id"),
    ]
    for fn, request, field in cases:
        err = call_error(fn, request)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert f"'{field}'" in err.details(), (field, err.details())


def test_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAYER2_HOST", "127.0.0.2")
    config, options = parse_args(["--discovery-target", "127.0.0.1:1", "--port", "7"])
    assert (config.host, config.port) == ("127.0.0.2", 7)
    assert options.discovery_target == "127.0.0.1:1" and options.plan_retention == 1000
    config, _ = parse_args([])
    assert config.port == 50052
