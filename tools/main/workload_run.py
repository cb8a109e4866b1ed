"""The main job's Layer-4 workload: two genomes, one workload, KPIs compared.

Given an ExecutionService stub whose module slot already holds the execution
kernel (DeployModule went through the 3->4 gate), :func:`run_workload`

1. subscribes to StreamKpis (``since`` = now, so no report recorded before the
   subscription is in place can be missed);
2. for each genome in turn: DeployGenome (a hot swap after the first), submits
   the same packing instances with SubmitTask, and waits for every task of
   that genome to finish before the next swap, so each task runs on the genome
   it is attributed to;
3. waits until every task's KpiReport has arrived, then summarizes per genome:
   tasks, statuses, mean quality, mean fuel, p50 run latency and p50
   enqueue-to-finish latency.

Everything here is an ordinary gRPC client; what went wrong is collected in
``WorkloadResult.failures`` (one line each) rather than raised, so the caller
can still print and save what did happen.
"""

from __future__ import annotations

import collections
import math
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import grpc

from chimera.execution.workload import GENOME_FIELDS, GOOD_GENOME, generate_instance
from chimera.framework.entrypoints import json_safe
from chimera.v1 import common_pb2, execution_pb2, execution_pb2_grpc

__all__ = [
    "DEFAULT_GENOME",
    "GENOMES",
    "GenomeResult",
    "WorkloadResult",
    "format_table",
    "make_instances",
    "run_workload",
]

#: Best fit in arrival order: a reasonable hand-written starting point.
DEFAULT_GENOME = (1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
#: (genome id, parameters) in deployment order: the default, then the better one.
#: ``reference-good`` is a fixed reference genome (a hand-picked fixture the
#: plan hot-swaps to), not something the loop evolved: the loop's own results
#: are under the summary's ``closed_loop``.
GENOMES: tuple[tuple[str, tuple[float, ...]], ...] = (
    ("default-best-fit", DEFAULT_GENOME),
    ("reference-good", GOOD_GENOME),
)
TERMINAL = frozenset(
    {
        common_pb2.TASK_STATUS_SUCCEEDED,
        common_pb2.TASK_STATUS_DEAD_LETTERED,
        common_pb2.TASK_STATUS_CANCELLED,
    }
)
RPC_TIMEOUT_S = 10.0


@dataclass
class _KpiReader:
    """Collects StreamKpis reports on a thread; waiters block on ``cond``."""

    call: Any  # the streaming call: an iterator of KpiReport that is also a grpc.Call
    reports: list[common_pb2.KpiReport] = field(default_factory=list)
    error: str = ""
    done: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def run(self) -> None:
        try:
            for report in self.call:
                with self.cond:
                    self.reports.append(report)
                    self.cond.notify_all()
        except grpc.RpcError as exc:
            if isinstance(exc, grpc.Call) and exc.code() != grpc.StatusCode.CANCELLED:
                self.error = f"StreamKpis failed: {exc.code().name}: {exc.details()}"
        with self.cond:
            self.done = True
            self.cond.notify_all()

    def wait_for_tasks(self, task_ids: set[str], timeout: float) -> bool:
        """True once a report for each of ``task_ids`` arrived; False on timeout or error."""

        def ready() -> bool:
            return task_ids <= {r.task_id for r in self.reports} or bool(self.error) or self.done

        with self.cond:
            self.cond.wait_for(ready, timeout)
            return task_ids <= {r.task_id for r in self.reports}


@dataclass(frozen=True)
class GenomeResult:
    """One genome's share of the workload, as its KPI reports and task records tell it."""

    genome_id: str
    module_versions: list[int]
    tasks: int
    statuses: dict[str, int]
    kpi_reports: int
    mean_quality: float
    mean_fuel: float
    p50_latency_ms: float
    p50_e2e_ms: float


@dataclass
class WorkloadResult:
    """Per-genome results, the genome swaps, KPI counts and what failed (if anything)."""

    module_name: str
    tasks_per_genome: int
    genomes: list[GenomeResult] = field(default_factory=list)
    swaps: list[dict[str, Any]] = field(default_factory=list)
    kpi_received: int = 0
    kpi_expected: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def quality_improvement(self) -> float:
        """Relative mean-quality change from the first genome to the last (NaN if unknown)."""
        if len(self.genomes) < 2:
            return math.nan
        q0, q1 = self.genomes[0].mean_quality, self.genomes[-1].mean_quality
        return q1 / q0 - 1 if q0 > 0 else math.nan

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        data = asdict(self)
        data["quality_improvement"] = self.quality_improvement
        return json_safe(data)


def make_instances(tasks: int, jobs: int) -> list[bytes]:
    """Task inputs: ``tasks`` generated packing instances of ``jobs`` jobs (seeds 0..tasks-1)."""
    return [generate_instance(seed, jobs).encode() for seed in range(tasks)]


def p50(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def run_workload(
    stub: execution_pb2_grpc.ExecutionServiceStub,
    module_name: str,
    instances: Sequence[bytes],
    *,
    genomes: Sequence[tuple[str, Sequence[float]]] = GENOMES,
    agent_id: str = "main-job",
    timeout_s: float = 120.0,
) -> WorkloadResult:
    """Runs ``instances`` once per genome on ``module_name``; see the module docstring.

    RPC errors other than those of the KPI stream propagate (the caller
    reports them with the step that failed).
    """
    result = WorkloadResult(module_name=module_name, tasks_per_genome=len(instances))
    request = execution_pb2.StreamKpisRequest(module_name=module_name)
    request.since.FromNanoseconds(time.time_ns())
    reader = _KpiReader(stub.StreamKpis(request))
    thread = threading.Thread(target=reader.run, name="kpi-stream", daemon=True)
    thread.start()
    task_genome: dict[str, str] = {}
    e2e: dict[str, list[float]] = collections.defaultdict(list)
    try:
        for genome_id, params in genomes:
            swap = stub.DeployGenome(
                execution_pb2.DeployGenomeRequest(
                    module_name=module_name,
                    genome=common_pb2.AgentGenome(
                        id=genome_id,
                        agent_id=agent_id,
                        parameters=list(params),
                        parameter_names=GENOME_FIELDS,
                    ),
                ),
                timeout=RPC_TIMEOUT_S,
            )
            result.swaps.append(
                {
                    "genome_id": genome_id,
                    "version": swap.version,
                    "previous_version": swap.previous_version,
                    "active": swap.active,
                }
            )
            submitted = _submit(stub, module_name, genome_id, agent_id, instances)
            task_genome.update(dict.fromkeys(submitted, genome_id))
            pending = _wait_terminal(stub, submitted, e2e[genome_id], timeout_s)
            if pending:
                result.failures.append(
                    f"{len(pending)} {genome_id} tasks did not finish within {timeout_s:g} s"
                )
        if not reader.wait_for_tasks(set(task_genome), timeout=30):
            missing = len(set(task_genome) - {r.task_id for r in reader.reports})
            result.failures.append(
                reader.error or f"{missing} tasks' KPI reports did not arrive on StreamKpis"
            )
        statuses = {
            t: common_pb2.TaskStatus.Name(
                stub.GetTask(execution_pb2.GetTaskRequest(task_id=t), timeout=RPC_TIMEOUT_S).status
            ).removeprefix("TASK_STATUS_")
            for t in task_genome
        }
    finally:
        reader.call.cancel()
        thread.join(5)

    reports: dict[str, list[common_pb2.KpiReport]] = collections.defaultdict(list)
    with reader.cond:
        for r in reader.reports:
            if r.task_id in task_genome:
                reports[task_genome[r.task_id]].append(r)
    result.kpi_expected = len(task_genome)
    result.kpi_received = len({r.task_id for rs in reports.values() for r in rs})
    for genome_id, _ in genomes:
        rs = reports.get(genome_id, [])
        counts = collections.Counter(s for t, s in statuses.items() if task_genome[t] == genome_id)
        genome = GenomeResult(
            genome_id=genome_id,
            module_versions=sorted({r.module_version for r in rs}),
            tasks=sum(counts.values()),
            statuses=dict(sorted(counts.items())),
            kpi_reports=len(rs),
            mean_quality=statistics.fmean(r.metrics["quality"] for r in rs) if rs else math.nan,
            mean_fuel=statistics.fmean(r.fuel_consumed for r in rs) if rs else math.nan,
            p50_latency_ms=p50([r.latency_ms for r in rs]),
            p50_e2e_ms=p50(e2e[genome_id]),
        )
        result.genomes.append(genome)
        if counts.get("SUCCEEDED", 0) != len(instances):
            result.failures.append(
                f"{genome_id}: not every task succeeded ({_status_text(genome.statuses)})"
            )
        if len(rs) != len(instances):
            result.failures.append(f"{genome_id}: {len(rs)} KPI reports for {len(instances)} tasks")
    if len(result.genomes) >= 2 and not result.quality_improvement > 0:
        q0, q1 = result.genomes[0].mean_quality, result.genomes[-1].mean_quality
        result.failures.append(f"the better genome did not improve quality ({q0:.4f} -> {q1:.4f})")
    return result


def _submit(
    stub: execution_pb2_grpc.ExecutionServiceStub,
    module_name: str,
    genome_id: str,
    agent_id: str,
    instances: Sequence[bytes],
) -> list[str]:
    task_ids = []
    for i, instance in enumerate(instances):
        handle = stub.SubmitTask(
            execution_pb2.TaskSpec(
                task_id=f"{genome_id}-{i:03d}",
                module_name=module_name,
                input=instance,
                agent_id=agent_id,
                priority=common_pb2.PRIORITY_NORMAL,
                labels={"genome": genome_id},
            ),
            timeout=RPC_TIMEOUT_S,
        )
        task_ids.append(handle.task_id)
    return task_ids


def _wait_terminal(
    stub: execution_pb2_grpc.ExecutionServiceStub,
    task_ids: Sequence[str],
    e2e_ms: list[float],
    timeout_s: float,
) -> set[str]:
    """Polls GetTask until every task is terminal (appending its latency); returns the rest."""
    end = time.monotonic() + timeout_s
    pending = set(task_ids)
    while pending and time.monotonic() < end:
        for task_id in sorted(pending):
            rec = stub.GetTask(execution_pb2.GetTaskRequest(task_id=task_id), timeout=RPC_TIMEOUT_S)
            if rec.status in TERMINAL:
                pending.discard(task_id)
                e2e_ms.append(
                    (rec.finished_at.ToNanoseconds() - rec.enqueued_at.ToNanoseconds()) / 1e6
                )
        if pending:
            time.sleep(0.01)
    return pending


def _status_text(statuses: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(statuses.items())) or "none"


def format_table(result: WorkloadResult) -> list[str]:
    """The per-genome table, the KPI count and the quality change, as printable lines."""
    header = (
        f"{'genome':<18} {'version':>7} {'tasks':>5}  {'statuses':<16} {'mean quality':>12} "
        f"{'mean fuel':>11} {'p50 run ms':>10} {'p50 e2e ms':>10}"
    )
    lines = [header, "-" * len(header)]
    for g in result.genomes:
        lines.append(
            f"{g.genome_id:<18} {','.join(map(str, g.module_versions)) or '-':>7} {g.tasks:>5}  "
            f"{_status_text(g.statuses):<16} {g.mean_quality:>12.4f} {g.mean_fuel:>11,.0f} "
            f"{g.p50_latency_ms:>10.3f} {g.p50_e2e_ms:>10.3f}"
        )
    lines.append(f"KPI reports received: {result.kpi_received}/{result.kpi_expected}")
    if len(result.genomes) >= 2:
        first, last = result.genomes[0], result.genomes[-1]
        fuel_ratio = last.mean_fuel / first.mean_fuel if first.mean_fuel > 0 else math.nan
        lines.append(
            f"Quality {first.mean_quality:.4f} -> {last.mean_quality:.4f} "
            f"({result.quality_improvement * 100:+.1f}%) after the hot swap to "
            f"{last.genome_id}, at {fuel_ratio:.1f}x the fuel per task."
        )
    return lines

