"""PlanningService: CreatePlan, GetPlan and RefinePlan on top of :class:`Planner`."""

from __future__ import annotations

import grpc

from chimera.framework import MetricsRegistry
from chimera.framework.errors import NotFound
from chimera.planning.planner import PlanInputs, Planner
from chimera.planning.store import PlanStore
from chimera.v1 import planning_pb2, planning_pb2_grpc

__all__ = ["SERVICE_NAME", "PlanningServicer"]

SERVICE_NAME = "chimera.v1.PlanningService"


class PlanningServicer(planning_pb2_grpc.PlanningServiceServicer):
    """The gRPC face of the planner; plans are kept in a bounded store."""

    def __init__(
        self, planner: Planner, store: PlanStore, metrics: MetricsRegistry | None = None
    ) -> None:
        self._planner = planner
        self._store = store
        registry = metrics or MetricsRegistry()
        self._plans = registry.counter(
            "planning_plans_total", "Plans created, by how.", ("kind",)
        )
        self._tasks = registry.histogram(
            "planning_plan_tasks", "Tasks per plan.", buckets=(1, 5, 10, 50, 100, 1000, 10000)
        )

    def CreatePlan(
        self, request: planning_pb2.CreatePlanRequest, context: grpc.ServicerContext
    ) -> planning_pb2.Plan:
        plan, inputs = self._planner.create(request)
        self._store.put(plan, inputs)
        self._plans.labels(kind="caller_tasks" if request.tasks else "template").inc()
        self._tasks.observe(len(plan.tasks))
        return plan

    def GetPlan(
        self, request: planning_pb2.GetPlanRequest, context: grpc.ServicerContext
    ) -> planning_pb2.Plan:
        return self._lookup(request.plan_id)[0]

    def RefinePlan(
        self, request: planning_pb2.RefinePlanRequest, context: grpc.ServicerContext
    ) -> planning_pb2.Plan:
        plan, inputs = self._lookup(request.plan_id)
        new, new_inputs = self._planner.refine(plan, inputs, request.samples)
        self._store.put(new, new_inputs)
        self._plans.labels(kind="refined").inc()
        return new

    def _lookup(self, plan_id: str) -> tuple[planning_pb2.Plan, PlanInputs]:
        found = self._store.get(plan_id)
        if found is None:
            raise NotFound(f"plan {plan_id!r} is unknown (never created, or evicted)")
        return found
