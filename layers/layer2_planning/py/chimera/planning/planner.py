"""Goal -> Plan: decomposition, graph checks, sizing, schedule and risks.

Pipeline of ``create``:

1. The goal gets an id (``goal-<hex>``) when it has none.
2. Tasks: the caller's, or the goal's template decomposition (see
   ``templates``). A task without a priority inherits the goal's
   (``PRIORITY_NORMAL`` when the goal has none either); a task without an
   assigned layer is carried out by execution (layer 4); a task without an
   estimate is assumed to take ``DEFAULT_DURATION_MS`` (an
   ``estimate.missing`` risk says so).
3. Capacity from layer-1 observations (see ``capacity``), capped by the
   goal's ``max_resources`` cores and memory.
4. The Rust core checks the graph (duplicate ids, unknown dependencies,
   cycles: INVALID_ARGUMENT naming the field, or the cycle), sizes the tasks
   that left CPU or memory at 0, schedules them (critical path; list
   scheduling when ``max_parallel_tasks`` or the core count limits
   parallelism) and computes per-layer peaks.
5. Risk rules (``risks``) are scored and ranked by the core.

``refine`` re-runs steps 4-5 with measured durations (the mean of the
samples per task, rounded to whole milliseconds) on the plan's original
inputs, giving a new plan with ``revision + 1``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf import timestamp_pb2

from chimera.framework.errors import InvalidArgument
from chimera.planning.capacity import (
    DEFAULT_CAPACITY,
    Capacity,
    DiscoverySource,
    capacity_from_batches,
)
from chimera.planning.core import (
    STATUS_CYCLE,
    STATUS_DUPLICATE_ID,
    STATUS_UNKNOWN_DEPENDENCY,
    CoreError,
    CoreTask,
    PlanningCore,
    Requirements,
    Schedule,
)
from chimera.planning.risks import identify
from chimera.planning.templates import TemplateSet
from chimera.v1 import common_pb2, planning_pb2

__all__ = ["DEFAULT_DURATION_MS", "PlanInputs", "Planner", "check_templates"]

DEFAULT_DURATION_MS = 60_000


@dataclass(frozen=True)
class PlanInputs:
    """What a plan was computed from, kept so that it can be refined."""

    goal: planning_pb2.Goal
    tasks: tuple[planning_pb2.Task, ...]  # resolved, not yet sized
    capacity: Capacity
    missing_estimates: frozenset[str]


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


class Planner:
    """Builds plans; stateless apart from its collaborators (thread-safe)."""

    def __init__(
        self,
        core: PlanningCore,
        templates: TemplateSet,
        discovery: DiscoverySource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = core
        self.templates = templates
        self.discovery = discovery
        self._clock = clock

    # --- inputs ---------------------------------------------------------
    def inputs(self, request: planning_pb2.CreatePlanRequest) -> PlanInputs:
        goal = planning_pb2.Goal()
        goal.CopyFrom(request.goal)
        if not goal.id:
            goal.id = _new_id("goal")
        if goal.priority == common_pb2.PRIORITY_UNSPECIFIED:
            goal.priority = common_pb2.PRIORITY_NORMAL
        if request.tasks:
            raw, prefix = list(request.tasks), "tasks"
        else:
            raw, prefix = self.templates.decompose(goal), "template"
        tasks, missing = [], set()
        for i, original in enumerate(raw):
            task = planning_pb2.Task()
            task.CopyFrom(original)
            if task.priority == common_pb2.PRIORITY_UNSPECIFIED:
                task.priority = goal.priority
            if task.assigned_layer == common_pb2.LAYER_UNSPECIFIED:
                task.assigned_layer = common_pb2.LAYER_EXECUTION
            if task.estimated_duration_ms == 0:
                task.estimated_duration_ms = DEFAULT_DURATION_MS
                missing.add(task.id)
            tasks.append(task)
        return PlanInputs(goal, tuple(tasks), self._capacity(request), frozenset(missing))

    def _capacity(self, request: planning_pb2.CreatePlanRequest) -> Capacity:
        found = None
        if request.observations:
            found = capacity_from_batches(request.observations, "request")
        elif self.discovery is not None:
            found = self.discovery.capacity()
        return found or DEFAULT_CAPACITY

    # --- building -------------------------------------------------------
    def create(
        self, request: planning_pb2.CreatePlanRequest
    ) -> tuple[planning_pb2.Plan, PlanInputs]:
        inputs = self.inputs(request)
        return self.build(inputs, revision=1, parent_plan_id=""), inputs

    def refine(
        self,
        plan: planning_pb2.Plan,
        inputs: PlanInputs,
        samples: Sequence[planning_pb2.TaskDurationSample],
    ) -> tuple[planning_pb2.Plan, PlanInputs]:
        known = {t.id for t in inputs.tasks}
        observed: dict[str, list[float]] = {}
        for i, s in enumerate(samples):
            if s.task_id not in known:
                raise InvalidArgument(f"samples[{i}].task_id", f"is not a task of plan {plan.id!r}")
            observed.setdefault(s.task_id, []).append(s.observed_duration_ms)
        tasks = []
        for original in inputs.tasks:
            task = planning_pb2.Task()
            task.CopyFrom(original)
            if task.id in observed:
                values = observed[task.id]
                task.estimated_duration_ms = int(round(sum(values) / len(values)))
            tasks.append(task)
        refined = PlanInputs(
            inputs.goal, tuple(tasks), inputs.capacity, inputs.missing_estimates - set(observed)
        )
        new = self.build(refined, revision=plan.revision + 1, parent_plan_id=plan.id)
        return new, refined

    def build(self, inputs: PlanInputs, *, revision: int, parent_plan_id: str) -> planning_pb2.Plan:
        goal, tasks = inputs.goal, inputs.tasks
        limits = goal.constraints.max_resources
        cores = inputs.capacity.cores
        if limits.cpu_cores:
            cores = min(cores, limits.cpu_cores)
        memory = inputs.capacity.memory_bytes
        if limits.memory_bytes:
            memory = min(memory, limits.memory_bytes) if memory else limits.memory_bytes
        schedule = self._schedule(tasks, goal.constraints.max_parallel_tasks, cores, memory)

        sized = []
        for task, timing in zip(tasks, schedule.timings):
            t = planning_pb2.Task()
            t.CopyFrom(task)
            t.resource_requirements.cpu_cores = timing.cpu_cores
            t.resource_requirements.memory_bytes = timing.memory_bytes
            sized.append(t)
        now = self._clock()
        created_at = timestamp_pb2.Timestamp()
        created_at.FromNanoseconds(int(now * 1e9))
        plan = planning_pb2.Plan(
            id=_new_id("plan"),
            goal=goal,
            tasks=[sized[i] for i in schedule.topo_order],
            timeline=[
                planning_pb2.TimelineEntry(
                    task_id=tasks[i].id,
                    start_offset_ms=schedule.timings[i].start,
                    end_offset_ms=schedule.timings[i].end,
                    slack_ms=schedule.timings[i].slack,
                    on_critical_path=schedule.timings[i].slack == 0,
                )
                for i in schedule.timeline_order
            ],
            critical_path=[tasks[i].id for i in schedule.critical_path],
            total_duration_ms=schedule.makespan_ms,
            resource_allocations=[
                planning_pb2.LayerAllocation(layer=layer, peak_requirements=_requirements(peak))
                for layer, peak in sorted(schedule.layer_peaks.items())
            ],
            created_at=created_at,
            revision=revision,
            parent_plan_id=parent_plan_id,
        )
        plan.risks.extend(
            self._risks(goal, sized, schedule, inputs.capacity, inputs.missing_estimates, now)
        )
        return plan

    def _schedule(
        self, tasks: Sequence[planning_pb2.Task], max_parallel: int, cores: float, memory: int
    ) -> Schedule:
        core_tasks = [
            CoreTask(
                id=t.id,
                duration_ms=t.estimated_duration_ms,
                priority=t.priority,
                layer=t.assigned_layer,
                requested=Requirements(
                    t.resource_requirements.cpu_cores,
                    t.resource_requirements.memory_bytes,
                    t.resource_requirements.gpu_count,
                    t.resource_requirements.gpu_memory_bytes,
                    t.resource_requirements.storage_bytes,
                ),
                deps=tuple(t.dependencies),
            )
            for t in tasks
        ]
        try:
            return self.core.schedule(
                core_tasks, max_parallel_tasks=max_parallel, cores=cores, memory_bytes=memory
            )
        except CoreError as exc:
            raise _graph_error(exc, tasks) from None

    def _risks(
        self,
        goal: planning_pb2.Goal,
        tasks: Sequence[planning_pb2.Task],
        schedule: Schedule,
        capacity: Capacity,
        missing: frozenset[str],
        now: float,
    ) -> list[planning_pb2.Risk]:
        candidates = identify(goal, tasks, schedule, capacity, missing, now * 1000.0)
        ranked = self.core.score_risks([(c.probability, c.impact) for c in candidates])
        return [
            planning_pb2.Risk(
                id=candidates[r.index].id,
                description=candidates[r.index].description,
                probability=candidates[r.index].probability,
                impact=candidates[r.index].impact,
                score=r.score,
                mitigation=candidates[r.index].mitigation,
                task_ids=list(candidates[r.index].task_ids),
            )
            for r in ranked
        ]


def _requirements(r: Requirements) -> common_pb2.ResourceRequirements:
    return common_pb2.ResourceRequirements(
        cpu_cores=r.cpu_cores,
        memory_bytes=r.memory_bytes,
        gpu_count=r.gpu_count,
        gpu_memory_bytes=r.gpu_memory_bytes,
        storage_bytes=r.storage_bytes,
    )


def _graph_error(exc: CoreError, tasks: Sequence[planning_pb2.Task]) -> InvalidArgument:
    """Maps the core's graph errors to INVALID_ARGUMENT naming the field."""
    d = exc.details
    if exc.status == STATUS_DUPLICATE_ID:
        index, task_id = int(d[0]), d[1]
        first = next(i for i, t in enumerate(tasks) if t.id == task_id)
        return InvalidArgument(
            f"tasks[{index}].id", f"must be unique ({task_id!r} is also tasks[{first}].id)"
        )
    if exc.status == STATUS_UNKNOWN_DEPENDENCY:
        return InvalidArgument(
            f"tasks[{d[0]}].dependencies[{d[1]}]", f"names unknown task {d[3]!r}"
        )
    if exc.status == STATUS_CYCLE:
        return InvalidArgument("tasks", f"dependencies form a cycle: {' -> '.join([*d, d[0]])}")
    return InvalidArgument("tasks", exc.message)


def check_templates(core: PlanningCore, templates: TemplateSet) -> None:
    """Fails start-up (ValueError) when a template's task graph is broken (e.g. a cycle)."""
    planner = Planner(core, templates)
    for template in templates.templates:
        try:
            planner._schedule(template.tasks, 0, 1.0, 0)
        except InvalidArgument as exc:
            raise ValueError(f"template {template.name!r}: {exc.message}") from None
