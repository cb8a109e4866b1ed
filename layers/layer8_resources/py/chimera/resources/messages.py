"""Between the contract's messages and the layer's records.

Checks beyond the contract's ``(chimera.v1.rules)`` (which the framework
applies before a handler runs) live here, each raising INVALID_ARGUMENT
naming the field: known enum values, a request for at least one resource,
GPU memory only with GPUs, and a lease no longer than the duration.
"""

from __future__ import annotations

from google.protobuf import timestamp_pb2

from chimera.framework import InvalidArgument
from chimera.resources.core import Amounts, Cost, Rates
from chimera.resources.inventory import HostInventory
from chimera.resources.jobs import Job, JobQueue
from chimera.resources.pool import Allocation, Pool
from chimera.v1 import common_pb2, resources_pb2

__all__ = [
    "allocation_pb",
    "checked_amounts",
    "cost_pb",
    "inventory_pb",
    "job_pb",
]


def checked_amounts(request: resources_pb2.ResourceRequest, prefix: str = "") -> Amounts:
    """The request's amounts; InvalidArgument (path under ``prefix``) when it makes no sense."""
    if request.requesting_layer not in common_pb2.Layer.values():
        raise InvalidArgument(f"{prefix}requesting_layer", "must be a known chimera.v1.Layer")
    if request.priority not in common_pb2.Priority.values():
        raise InvalidArgument(f"{prefix}priority", "must be a known chimera.v1.Priority")
    r = request.requirements
    amounts = Amounts(r.cpu_cores, r.memory_bytes, r.gpu_count, r.gpu_memory_bytes, r.storage_bytes)
    if amounts == Amounts():
        raise InvalidArgument(f"{prefix}requirements", "must ask for at least one resource")
    if r.gpu_memory_bytes and not r.gpu_count:
        raise InvalidArgument(
            f"{prefix}requirements.gpu_memory_bytes", "needs requirements.gpu_count >= 1"
        )
    if request.lease_seconds > 60 * request.duration_minutes:
        raise InvalidArgument(
            f"{prefix}lease_seconds", "must not exceed duration_minutes x 60"
        )
    return amounts


def _ts(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if seconds is None:
        return None
    t = timestamp_pb2.Timestamp()
    t.FromNanoseconds(int(round(seconds * 1e9)))
    return t


def rates_pb(rates: Rates) -> resources_pb2.CostRates:
    return resources_pb2.CostRates(
        usd_per_cpu_core_hour=rates.usd_per_cpu_core_hour,
        usd_per_memory_gib_hour=rates.usd_per_memory_gib_hour,
        usd_per_gpu_hour=rates.usd_per_gpu_hour,
        usd_per_gpu_memory_gib_hour=rates.usd_per_gpu_memory_gib_hour,
        usd_per_storage_gib_hour=rates.usd_per_storage_gib_hour,
    )


def cost_pb(cost: Cost, rates: Rates) -> resources_pb2.CostBreakdown:
    cpu, memory, gpu, gpu_memory, storage = cost.shares
    return resources_pb2.CostBreakdown(
        cpu_usd_per_hour=cpu,
        memory_usd_per_hour=memory,
        gpu_usd_per_hour=gpu,
        gpu_memory_usd_per_hour=gpu_memory,
        storage_usd_per_hour=storage,
        total_usd_per_hour=cost.per_hour,
        duration_minutes=cost.duration_minutes,
        total_usd=cost.total,
        rates=rates_pb(rates),
    )


def requirements_pb(a: Amounts) -> common_pb2.ResourceRequirements:
    return common_pb2.ResourceRequirements(
        cpu_cores=a.cpu_cores,
        memory_bytes=a.memory_bytes,
        gpu_count=a.gpu_count,
        gpu_memory_bytes=a.gpu_memory_bytes,
        storage_bytes=a.storage_bytes,
    )


def allocation_pb(a: Allocation, rates: Rates) -> resources_pb2.ResourceAllocation:
    return resources_pb2.ResourceAllocation(
        id=a.id,
        request=a.request,
        device_ids=list(a.device_ids),
        cost=cost_pb(a.cost, rates),
        status=a.status,
        allocated_at=_ts(a.allocated_at),
        expires_at=_ts(a.expires_at),
        ended_at=_ts(a.ended_at),
        lease_expires_at=_ts(a.lease_expires_at),
        job_id=a.job_id,
    )


def job_pb(job: Job, queue: JobQueue, rates: Rates) -> resources_pb2.ScheduledJob:
    out = resources_pb2.ScheduledJob(
        id=job.id,
        name=job.name,
        status=job.status,
        estimated_cost=cost_pb(job.estimated_cost, rates),
        queue_position=queue.position(job),
        submitted_at=_ts(job.submitted_at),
        reason=job.reason,
        request=job.request,
        budget_usd=job.budget_usd,
        population_size=job.population_size,
    )
    allocation = queue.allocation(job)
    if allocation is not None:
        out.allocation.CopyFrom(allocation_pb(allocation, rates))
    if job.grant is not None:
        g = job.grant
        out.grant.CopyFrom(
            resources_pb2.RunGrant(
                max_population=g.max_population,
                device_ids=list(g.device_ids),
                cpu_cores=g.cpu_cores,
                wall_time_seconds=g.wall_time_seconds,
                deadline=_ts(g.deadline),
                cost_usd=g.cost_usd,
            )
        )
    return out


def inventory_pb(host: HostInventory, pool: Pool, queued_jobs: int) -> resources_pb2.Inventory:
    capacity, allocated = pool.totals()
    available = Amounts(
        max(capacity.cpu_cores - allocated.cpu_cores, 0.0),
        max(capacity.memory_bytes - allocated.memory_bytes, 0),
        max(capacity.gpu_count - allocated.gpu_count, 0),
        max(capacity.gpu_memory_bytes - allocated.gpu_memory_bytes, 0),
        max(capacity.storage_bytes - allocated.storage_bytes, 0),
    )
    holders = pool.holders()
    return resources_pb2.Inventory(
        capacity=requirements_pb(capacity),
        allocated=requirements_pb(allocated),
        available=requirements_pb(available),
        devices=[
            resources_pb2.Device(
                id=d.id,
                kind=d.kind,
                name=d.name,
                memory_bytes=d.memory_bytes,
                platform=d.platform,
                allocation_id=holders.get(d.id, ""),
            )
            for d in host.devices
        ],
        rates=rates_pb(pool.rates),
        observed_at=_ts(host.observed_at),
        active_allocations=pool.active_count(),
        queued_jobs=queued_jobs,
        accelerator_probe=host.accelerator_probe,
    )
