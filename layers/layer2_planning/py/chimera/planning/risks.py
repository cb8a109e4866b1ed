"""Risk identification: deterministic rules over a scheduled plan.

Each rule yields a candidate with a probability in [0, 1] and an impact on
the 1 (negligible) .. 5 (severe) scale; the Rust core scores them
(``probability x impact``) and ranks them, highest first.

* ``deadline.max_duration``: ``max_duration_ms`` is set and the makespan is
  above 80 % of it. Probability 1 and impact 5 when exceeded, else
  probability makespan / limit and impact 4.
* ``deadline.timestamp``: the same against the time left before ``deadline``.
* ``schedule.critical_path``: k tasks have zero slack and a non-zero duration;
  each overruns with 10 %, so probability 1 - 0.9^k; impact 3.
* ``resources.task_exceeds_host``: a task needs more cores, memory or GPUs
  than the host has; probability 1, impact 5.
* ``resources.oversubscribed``: the plan's peak concurrent cores (all layers
  at once) exceed the host's; probability 0.5, impact 3.
* ``resources.goal_limit``: that peak exceeds ``goal.constraints.max_resources``
  (cores, memory or GPUs); probability 1, impact 4.
* ``estimate.missing``: tasks came without an estimate and a default was
  assumed; probability 0.5, impact 2.
* ``capacity.unknown``: no host observation, tasks sized from defaults;
  probability 0.5, impact 2.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from chimera.planning.capacity import Capacity
from chimera.planning.core import Schedule
from chimera.v1 import planning_pb2

__all__ = ["Candidate", "identify"]

_NEAR = 0.8


@dataclass(frozen=True)
class Candidate:
    id: str
    description: str
    probability: float
    impact: int
    mitigation: str
    task_ids: tuple[str, ...] = ()


def _time_risk(
    rid: str, what: str, makespan: int, limit_ms: float, critical: Sequence[str]
) -> Candidate | None:
    if limit_ms <= 0:
        return Candidate(
            rid, f"{what} has already passed", 1.0, 5,
            "Move the deadline or drop the goal.", tuple(critical),
        )
    ratio = makespan / limit_ms
    if ratio <= _NEAR:
        return None
    exceeded = ratio > 1.0
    return Candidate(
        rid,
        f"makespan {makespan} ms is {ratio:.0%} of {what} ({limit_ms:.0f} ms)",
        1.0 if exceeded else ratio,
        5 if exceeded else 4,
        "Shorten critical-path tasks, raise max_parallel_tasks or relax the limit.",
        tuple(critical),
    )


def identify(
    goal: planning_pb2.Goal,
    tasks: Sequence[planning_pb2.Task],
    schedule: Schedule,
    capacity: Capacity,
    missing_estimates: Collection[str],
    now_ms: float,
) -> list[Candidate]:
    """The candidates the rules raise for a plan (tasks in input order, sized)."""
    out: list[Candidate] = []
    critical_ids = [tasks[i].id for i in schedule.critical_path]
    c = goal.constraints
    if c.max_duration_ms:
        risk = _time_risk(
            "deadline.max_duration", "max_duration_ms", schedule.makespan_ms,
            float(c.max_duration_ms), critical_ids,
        )
        if risk:
            out.append(risk)
    if c.HasField("deadline"):
        left = c.deadline.ToMilliseconds() - now_ms
        risk = _time_risk(
            "deadline.timestamp", "the time left before the deadline", schedule.makespan_ms,
            left, critical_ids,
        )
        if risk:
            out.append(risk)
    zero_slack = [
        tasks[i].id
        for i in schedule.topo_order
        if schedule.timings[i].slack == 0 and tasks[i].estimated_duration_ms > 0
    ]
    if zero_slack:
        out.append(
            Candidate(
                "schedule.critical_path",
                f"{len(zero_slack)} tasks have no slack; any overrun delays the plan",
                1.0 - 0.9 ** len(zero_slack),
                3,
                "Add buffer to long critical tasks or split them to run in parallel.",
                tuple(zero_slack),
            )
        )
    too_big = [
        t.id
        for t in tasks
        if t.resource_requirements.cpu_cores > capacity.cores
        or (capacity.memory_bytes and t.resource_requirements.memory_bytes > capacity.memory_bytes)
        or t.resource_requirements.gpu_count > capacity.gpu_count
    ]
    if too_big:
        out.append(
            Candidate(
                "resources.task_exceeds_host",
                f"{len(too_big)} tasks need more than the host has "
                f"({capacity.cores:g} cores, {capacity.memory_bytes} bytes, "
                f"{capacity.gpu_count} GPUs)",
                1.0,
                5,
                "Lower the tasks' requirements or plan for a larger host (layer 8).",
                tuple(too_big),
            )
        )
    peak_cores = schedule.overall_peak.cpu_cores
    if peak_cores > capacity.cores + 1e-9:
        out.append(
            Candidate(
                "resources.oversubscribed",
                f"up to {peak_cores:g} cores are requested at once "
                f"on a {capacity.cores:g}-core host",
                0.5,
                3,
                "Set goal.constraints.max_parallel_tasks or lower per-task cores.",
            )
        )
    limits = c.max_resources
    if c.HasField("max_resources"):
        peak = schedule.overall_peak
        over = []
        if limits.cpu_cores and peak.cpu_cores > limits.cpu_cores + 1e-9:
            over.append("cpu_cores")
        if limits.memory_bytes and peak.memory_bytes > limits.memory_bytes:
            over.append("memory_bytes")
        if limits.gpu_count and peak.gpu_count > limits.gpu_count:
            over.append("gpu_count")
        if over:
            out.append(
                Candidate(
                    "resources.goal_limit",
                    f"peak use exceeds goal.constraints.max_resources on {', '.join(over)}",
                    1.0,
                    4,
                    "Lower max_parallel_tasks or the tasks' requirements.",
                )
            )
    if missing_estimates:
        out.append(
            Candidate(
                "estimate.missing",
                f"{len(missing_estimates)} tasks had no duration estimate; a default was assumed",
                0.5,
                2,
                "Give estimated_duration_ms, or refine the plan with measured durations.",
                tuple(sorted(missing_estimates)),
            )
        )
    if not capacity.measured:
        out.append(
            Candidate(
                "capacity.unknown",
                "no host observation was available; tasks were sized from defaults",
                0.5,
                2,
                "Pass observations from DiscoveryService or configure --discovery-target.",
            )
        )
    return out
