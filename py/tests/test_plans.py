"""chimera.plans.executor: dependency order, and plans that cannot run stop before they start."""

from __future__ import annotations

import pytest

from chimera.plans.executor import PlanError, PlanExecutor, PlanRun, dependency_order
from chimera.v1 import planning_pb2


def plan(*tasks: tuple[str, str, list[str]]) -> planning_pb2.Plan:
    return planning_pb2.Plan(
        id="p1",
        tasks=[planning_pb2.Task(id=i, operation=op, dependencies=deps) for i, op, deps in tasks],
    )


def test_tasks_run_after_their_dependencies_and_ties_keep_plan_order() -> None:
    p = plan(("c", "x", ["a", "b"]), ("a", "x", []), ("b", "x", ["a"]), ("d", "x", []))
    assert [t.id for t in dependency_order(p.tasks)] == ["a", "b", "c", "d"]


def test_each_operation_sees_the_results_before_it() -> None:
    seen: list[tuple[str, list[str]]] = []

    def op(task: planning_pb2.Task, run: PlanRun) -> str:
        seen.append((task.id, list(run.results)))
        return task.id.upper()

    run = PlanExecutor({"x": op, "y": op}).run(plan(("a", "x", []), ("b", "y", ["a"])))
    assert seen == [("a", []), ("b", ["a"])]
    assert run.value("b") == "B" and run.last("x") == "A"
    assert run.results["b"].seconds >= 0
    with pytest.raises(KeyError, match="no task of operation 'z'"):
        run.last("z")


def test_an_unknown_operation_stops_the_plan_before_any_task_runs() -> None:
    ran: list[str] = []
    executor = PlanExecutor({"x": lambda task, run: ran.append(task.id)})
    with pytest.raises(PlanError, match=r"task 'b' needs operation 'deploy', which no layer implements here \(known: x\)"):
        executor.run(plan(("a", "x", []), ("b", "deploy", ["a"])))
    assert ran == []


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ((("a", "x", ["b"]), ("b", "x", ["a"])), r"the tasks \['a', 'b'\] depend on each other"),
        ((("a", "x", ["ghost"]),), "task 'a' depends on unknown task 'ghost'"),
    ],
)
def test_cycles_and_unknown_dependencies_are_refused(
    tasks: tuple[tuple[str, str, list[str]], ...], message: str
) -> None:
    with pytest.raises(PlanError, match=message):
        PlanExecutor({"x": lambda task, run: None}).run(plan(*tasks))


def test_an_operation_that_fails_stops_the_run() -> None:
    def boom(task: planning_pb2.Task, run: PlanRun) -> None:
        raise RuntimeError(f"{task.id} failed")

    ran: list[str] = []
    executor = PlanExecutor({"x": boom, "y": lambda task, run: ran.append(task.id)})
    with pytest.raises(RuntimeError, match="a failed"):
        executor.run(plan(("a", "x", []), ("b", "y", ["a"])))
    assert ran == []
