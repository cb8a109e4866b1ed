"""The job queue: evolution runs (and other jobs) scheduled by priority and budget.

``schedule`` prices the job for its whole duration and rejects it at once
(status REJECTED, ``reason`` naming the field) when the price per hour is
above ``max_cost_usd_per_hour``, the total above ``budget_usd``, or the
request larger than the whole pool. Otherwise the job is QUEUED and the
queue is dispatched.

Dispatch (after every change and on every call, see :meth:`JobQueue.sync`)
grants queued jobs strictly in order, highest priority first and FIFO among
equals, and stops at the first job that does not fit what is free now: a
large job at the head is never starved by smaller ones behind it. A granted
job is RUNNING with an allocation and a :class:`Grant` that bounds the run:
the devices and cores held, the wall time (the allocation's duration) and
the largest population, ``population_size`` capped by
``population_per_core x cpu_cores + population_per_gpu x gpu_count``
(``resources.json``; a job asking for 0 gets the cap). When its allocation
is released or expires the job is FINISHED.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from chimera.framework import NotFound
from chimera.resources.config import GrantLimits
from chimera.resources.core import Amounts, Cost
from chimera.resources.metrics import ResourceMetrics
from chimera.resources.pool import Allocation, Clock, Pool
from chimera.v1 import common_pb2, resources_pb2

__all__ = ["Grant", "Job", "JobQueue", "Reaper"]

QUEUED = resources_pb2.JOB_STATUS_QUEUED
RUNNING = resources_pb2.JOB_STATUS_RUNNING
FINISHED = resources_pb2.JOB_STATUS_FINISHED
REJECTED = resources_pb2.JOB_STATUS_REJECTED
CANCELLED = resources_pb2.JOB_STATUS_CANCELLED


@dataclass(frozen=True)
class Grant:
    """The bounds of a granted run."""

    max_population: int
    device_ids: tuple[str, ...]
    cpu_cores: float
    wall_time_seconds: int
    deadline: float
    cost_usd: float


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    request: resources_pb2.ResourceRequest
    amounts: Amounts
    budget_usd: float
    population_size: int
    estimated_cost: Cost
    submitted_at: float
    seq: int
    status: int = QUEUED
    reason: str = ""
    allocation_id: str = ""
    grant: Grant | None = None

    @property
    def priority(self) -> int:
        return self.request.priority or common_pb2.PRIORITY_NORMAL


class JobQueue:
    """Jobs by id over a :class:`Pool`; thread-safe (shares the pool's lock)."""

    def __init__(
        self,
        pool: Pool,
        limits: GrantLimits,
        clock: Clock,
        metrics: ResourceMetrics,
        retention: int = 1000,
        on_change: Callable[[Pool, JobQueue], None] | None = None,
    ) -> None:
        self._pool = pool
        self._on_change = on_change
        self._limits = limits
        self._clock = clock
        self._metrics = metrics
        self._retention = retention
        self._jobs: dict[str, Job] = {}
        self._done: OrderedDict[str, Job] = OrderedDict()
        self._seq = itertools.count()
        self._lock: threading.RLock = pool.lock

    def schedule(
        self,
        name: str,
        request: resources_pb2.ResourceRequest,
        amounts: Amounts,
        budget_usd: float,
        population_size: int,
    ) -> Job:
        cost = self._pool.price(amounts, request.duration_minutes)
        job = Job(
            id=f"job-{uuid.uuid4().hex[:16]}",
            name=name,
            request=request,
            amounts=amounts,
            budget_usd=budget_usd,
            population_size=population_size,
            estimated_cost=cost,
            submitted_at=self._clock(),
            seq=next(self._seq),
        )
        reason, resource = self._rejection(job)
        with self._lock:
            if reason:
                self._metrics.refusals.labels(resource=resource, reason=_why(resource)).inc()
                return self._finish(replace(job, status=REJECTED, reason=reason))
            self._jobs[job.id] = job
            self._metrics.jobs.labels(status="QUEUED").inc()
            self.sync()
            return self._jobs.get(job.id) or self._done[job.id]

    def get(self, job_id: str) -> Job:
        with self._lock:
            self.sync()
            found = self._jobs.get(job_id) or self._done.get(job_id)
        if found is None:
            raise NotFound(f"job {job_id!r} is unknown (never scheduled, or forgotten)")
        return found

    def cancel(self, job_id: str) -> Job:
        """A queued job is CANCELLED; a running one's allocation is released (FINISHED)."""
        with self._lock:
            job = self.get(job_id)
            if job.status == QUEUED:
                del self._jobs[job.id]
                job = self._finish(replace(job, status=CANCELLED, reason="cancelled while queued"))
            elif job.status == RUNNING:
                self._pool.release(job.allocation_id)
            self.sync()
            return self._jobs.get(job_id) or self._done[job_id]

    def position(self, job: Job) -> int:
        """1-based place in the queue (0 unless QUEUED)."""
        with self._lock:
            order = self._queued()
        return next((i + 1 for i, j in enumerate(order) if j.id == job.id), 0)

    def queued_count(self) -> int:
        with self._lock:
            return len(self._queued())

    def sync(self) -> None:
        """Expires leases, finishes jobs whose allocation ended, grants queued jobs."""
        with self._lock:
            self._pool.expire()
            for job in [j for j in self._jobs.values() if j.status == RUNNING]:
                status = self._pool.status(job.allocation_id)
                if status != resources_pb2.ALLOCATION_STATUS_ACTIVE:
                    del self._jobs[job.id]
                    why = resources_pb2.AllocationStatus.Name(status).rsplit("_", 1)[-1]
                    self._finish(replace(job, status=FINISHED, reason=f"allocation {why.lower()}"))
            queued = self._queued()
            if queued:
                granted = self._pool.allocate_in_order(
                    [(j.request, j.amounts, j.estimated_cost, j.id) for j in queued]
                )
                for job, allocation in zip(queued, granted):
                    if allocation is not None:
                        self._jobs[job.id] = replace(
                            job,
                            status=RUNNING,
                            allocation_id=allocation.id,
                            grant=self._grant(job, allocation),
                        )
                        self._metrics.jobs.labels(status="RUNNING").inc()
            self._metrics.queued.set(len(self._queued()))
            self.record()

    def record(self) -> None:
        """Hands the pool and the jobs to ``on_change`` (the ledger), under the lock."""
        if self._on_change is not None:
            with self._lock:
                self._on_change(self._pool, self)

    def export(self) -> tuple[list[Job], list[Job]]:
        """(queued and running, retained finished) jobs, for the ledger."""
        with self._lock:
            return list(self._jobs.values()), list(self._done.values())

    def restore(self, jobs: Sequence[Job]) -> None:
        """Puts recorded jobs back (at start-up, before any call); sequence numbers go on after them."""
        with self._lock:
            if self._jobs or self._done:
                raise ValueError("restore: the queue already holds jobs")
            for job in sorted(jobs, key=lambda j: j.seq):
                if job.status in (QUEUED, RUNNING):
                    self._jobs[job.id] = job
                else:
                    self._done[job.id] = job
            self._seq = itertools.count(max((j.seq for j in jobs), default=-1) + 1)

    def allocation(self, job: Job) -> Allocation | None:
        if not job.allocation_id or not self._pool.status(job.allocation_id):
            return None
        return self._pool.get(job.allocation_id)

    # --- internals -------------------------------------------------------------

    def _rejection(self, job: Job) -> tuple[str, str]:
        cost, limit = job.estimated_cost, job.request.max_cost_usd_per_hour
        if limit > 0 and cost.per_hour > limit:
            return (
                f"max_cost_usd_per_hour: estimated {cost.per_hour:.6g} USD/h is above "
                f"the limit of {limit:.6g} USD/h",
                "max_cost_usd_per_hour",
            )
        if job.budget_usd > 0 and cost.total > job.budget_usd:
            return (
                f"budget_usd: estimated {cost.total:.6g} USD for {job.request.duration_minutes} "
                f"min is above the budget of {job.budget_usd:.6g} USD",
                "budget_usd",
            )
        too_large = self._pool.check_fits_pool(job.amounts)
        if too_large is not None:
            return too_large.message, too_large.resource
        return "", ""

    def _grant(self, job: Job, allocation: Allocation) -> Grant:
        cap = int(
            self._limits.population_per_core * allocation.amounts.cpu_cores
            + self._limits.population_per_gpu * allocation.amounts.gpu_count
        )
        wanted = job.population_size
        return Grant(
            max_population=min(wanted, cap) if wanted else cap,
            device_ids=allocation.device_ids,
            cpu_cores=allocation.amounts.cpu_cores,
            wall_time_seconds=60 * job.request.duration_minutes,
            deadline=allocation.expires_at,
            cost_usd=allocation.cost.total,
        )

    def _queued(self) -> list[Job]:
        jobs = [j for j in self._jobs.values() if j.status == QUEUED]
        return sorted(jobs, key=lambda j: (-j.priority, j.seq))

    def _finish(self, job: Job) -> Job:
        self._done[job.id] = job
        while len(self._done) > self._retention:
            self._done.popitem(last=False)
        self._metrics.jobs.labels(status=resources_pb2.JobStatus.Name(job.status)[11:]).inc()
        return job


def _why(resource: str) -> str:
    return {"max_cost_usd_per_hour": "max_cost", "budget_usd": "budget"}.get(resource, "too_large")


class Reaper:
    """Runs :meth:`JobQueue.sync` every ``interval`` seconds on its own thread, so
    leases of holders that died are returned (and queued jobs start) even when
    no call arrives. ``stop`` ends it."""

    def __init__(self, queue: JobQueue, interval: float = 1.0) -> None:
        self._queue = queue
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="layer8-reaper", daemon=True)

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # stopping one never started (a failed bind) is fine
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._queue.sync()
