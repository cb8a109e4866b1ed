"""Runs a plan's tasks in dependency order, each by the operation it names.

A plan (``chimera.v1.Plan`` from layer 2) names, per task, an ``operation``
and the tasks it depends on; what an operation *does* is a callable the
caller registers. Before anything runs, every operation must be known and
the graph acyclic, so a plan that cannot be carried out stops with one
error naming the task and its operation instead of failing half way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chimera.v1 import planning_pb2

__all__ = ["Operation", "PlanError", "PlanExecutor", "PlanRun", "TaskResult", "dependency_order"]


class PlanError(ValueError):
    """The plan cannot be carried out: an operation no layer implements, or a cycle."""


@dataclass(frozen=True)
class TaskResult:
    """What one task's operation returned, and how long it took."""

    task_id: str
    operation: str
    value: Any
    seconds: float


@dataclass
class PlanRun:
    """The results so far, by task id, in the order the tasks ran."""

    plan_id: str
    results: dict[str, TaskResult] = field(default_factory=dict)

    def value(self, task_id: str) -> Any:
        return self.results[task_id].value

    def last(self, operation: str) -> Any:
        """The value of the most recent task that ran ``operation`` (KeyError if none did)."""
        for result in reversed(self.results.values()):
            if result.operation == operation:
                return result.value
        raise KeyError(f"no task of operation {operation!r} has run")


#: An operation: given the task and the run so far, returns the task's value.
Operation = Callable[[planning_pb2.Task, PlanRun], Any]


def dependency_order(tasks: Sequence[planning_pb2.Task]) -> list[planning_pb2.Task]:
    """Tasks so that each comes after its dependencies; ties keep the plan's order."""
    by_id = {t.id: t for t in tasks}
    for task in tasks:
        for dep in task.dependencies:
            if dep not in by_id:
                raise PlanError(f"task {task.id!r} depends on unknown task {dep!r}")
    order: list[planning_pb2.Task] = []
    done: set[str] = set()
    while len(order) < len(tasks):
        ready = [t for t in tasks if t.id not in done and all(d in done for d in t.dependencies)]
        if not ready:
            stuck = sorted(t.id for t in tasks if t.id not in done)
            raise PlanError(f"the tasks {stuck} depend on each other (a cycle)")
        order.append(ready[0])
        done.add(ready[0].id)
    return order


class PlanExecutor:
    """Runs plans with a fixed set of operations."""

    def __init__(self, operations: Mapping[str, Operation]) -> None:
        self._operations = dict(operations)

    @property
    def operations(self) -> tuple[str, ...]:
        return tuple(sorted(self._operations))

    def check(self, plan: planning_pb2.Plan) -> list[planning_pb2.Task]:
        """The order the plan would run in; PlanError if it cannot run at all."""
        for task in plan.tasks:
            if task.operation not in self._operations:
                raise PlanError(
                    f"task {task.id!r} needs operation {task.operation!r}, which no layer "
                    f"implements here (known: {', '.join(self.operations)})"
                )
        return dependency_order(plan.tasks)

    def run(self, plan: planning_pb2.Plan) -> PlanRun:
        """Runs every task; an operation's exception stops the run and propagates."""
        order = self.check(plan)
        run = PlanRun(plan.id)
        for task in order:
            start = time.perf_counter()
            value = self._operations[task.operation](task, run)
            run.results[task.id] = TaskResult(
                task.id, task.operation, value, time.perf_counter() - start
            )
        return run
