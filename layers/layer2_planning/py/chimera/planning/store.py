"""Plans created so far, with the inputs needed to refine them."""

from __future__ import annotations

import threading
from collections import OrderedDict

from chimera.planning.planner import PlanInputs
from chimera.v1 import planning_pb2

__all__ = ["PlanStore"]


class PlanStore:
    """The newest ``capacity`` plans by id; thread-safe. Older plans are forgotten."""

    def __init__(self, capacity: int = 1000) -> None:
        if capacity < 1:
            raise ValueError("PlanStore capacity must be at least 1")
        self._capacity = capacity
        self._plans: OrderedDict[str, tuple[planning_pb2.Plan, PlanInputs]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, plan: planning_pb2.Plan, inputs: PlanInputs) -> None:
        with self._lock:
            self._plans[plan.id] = (plan, inputs)
            while len(self._plans) > self._capacity:
                self._plans.popitem(last=False)

    def get(self, plan_id: str) -> tuple[planning_pb2.Plan, PlanInputs] | None:
        with self._lock:
            return self._plans.get(plan_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._plans)
