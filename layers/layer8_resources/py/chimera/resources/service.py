"""ResourcesService: inventory, allocations, leases, cost and the job queue.

Refusals: a request that does not fit is RESOURCE_EXHAUSTED, whether it
does not fit what is free now or is larger than the whole pool (the message
says which); one above its ``max_cost_usd_per_hour`` is FAILED_PRECONDITION.
Each message starts with the field at fault (``requirements.gpu_count: ...``,
``max_cost_usd_per_hour: ...``).
"""

from __future__ import annotations

import grpc

from chimera.framework import FailedPrecondition, ResourceExhausted
from chimera.resources.inventory import InventorySource
from chimera.resources.jobs import JobQueue
from chimera.resources.messages import (
    allocation_pb,
    checked_amounts,
    cost_pb,
    inventory_pb,
    job_pb,
)
from chimera.resources.pool import Pool, Refused
from chimera.v1 import resources_pb2, resources_pb2_grpc

__all__ = ["SERVICE_NAME", "ResourcesServicer"]

SERVICE_NAME = "chimera.v1.ResourcesService"
DEFAULT_LIST_LIMIT = 100


class ResourcesServicer(resources_pb2_grpc.ResourcesServiceServicer):
    """The gRPC face of the pool and the job queue."""

    def __init__(self, pool: Pool, queue: JobQueue, probe: InventorySource) -> None:
        self._pool = pool
        self._queue = queue
        self._probe = probe

    def GetInventory(
        self, request: resources_pb2.GetInventoryRequest, context: grpc.ServicerContext
    ) -> resources_pb2.Inventory:
        if request.refresh:
            self._pool.set_host(self._probe())
        self._queue.sync()
        return inventory_pb(self._pool.host(), self._pool, self._queue.queued_count())

    def Allocate(
        self, request: resources_pb2.ResourceRequest, context: grpc.ServicerContext
    ) -> resources_pb2.ResourceAllocation:
        amounts = checked_amounts(request)
        self._queue.sync()
        try:
            allocation = self._pool.allocate(request, amounts)
        except Refused as err:
            if err.reason == "max_cost":
                raise FailedPrecondition(err.message) from None
            raise ResourceExhausted(err.message) from None
        self._queue.record()
        return allocation_pb(allocation, self._pool.rates)

    def Release(
        self, request: resources_pb2.ReleaseRequest, context: grpc.ServicerContext
    ) -> resources_pb2.ResourceAllocation:
        allocation = self._pool.release(request.allocation_id)
        self._queue.sync()  # the share may let queued jobs start
        return allocation_pb(allocation, self._pool.rates)

    def RenewLease(
        self, request: resources_pb2.RenewLeaseRequest, context: grpc.ServicerContext
    ) -> resources_pb2.ResourceAllocation:
        self._queue.sync()
        renewed = self._pool.renew(request.allocation_id)
        self._queue.record()
        return allocation_pb(renewed, self._pool.rates)

    def ListAllocations(
        self, request: resources_pb2.ListAllocationsRequest, context: grpc.ServicerContext
    ) -> resources_pb2.ListAllocationsResponse:
        self._queue.sync()
        found = self._pool.list(
            request.status, request.requesting_layer, request.limit or DEFAULT_LIST_LIMIT
        )
        return resources_pb2.ListAllocationsResponse(
            allocations=[allocation_pb(a, self._pool.rates) for a in found]
        )

    def EstimateCost(
        self, request: resources_pb2.ResourceRequest, context: grpc.ServicerContext
    ) -> resources_pb2.CostBreakdown:
        cost = self._pool.price(checked_amounts(request), request.duration_minutes)
        return cost_pb(cost, self._pool.rates)

    def ScheduleJob(
        self, request: resources_pb2.ScheduleJobRequest, context: grpc.ServicerContext
    ) -> resources_pb2.ScheduledJob:
        amounts = checked_amounts(request.request, "request.")
        job = self._queue.schedule(
            request.name, request.request, amounts, request.budget_usd, request.population_size
        )
        return job_pb(job, self._queue, self._pool.rates)

    def GetJob(
        self, request: resources_pb2.GetJobRequest, context: grpc.ServicerContext
    ) -> resources_pb2.ScheduledJob:
        return job_pb(self._queue.get(request.job_id), self._queue, self._pool.rates)

    def CancelJob(
        self, request: resources_pb2.CancelJobRequest, context: grpc.ServicerContext
    ) -> resources_pb2.ScheduledJob:
        return job_pb(self._queue.cancel(request.job_id), self._queue, self._pool.rates)
