"""What a layer that runs jobs (layer 7's evolution runs) uses to ask before a run.

    with ResourcesClient("127.0.0.1:50058") as resources:
        job = resources.request_run("evolve packer", cpu_cores=2, minutes=10,
                                    population_size=512, wait_seconds=30)
        if job.status == resources_pb2.JOB_STATUS_RUNNING:
            run(population=job.grant.max_population, devices=job.grant.device_ids,
                until=job.grant.deadline)
        resources.finish(job.id)

``request_run`` schedules the job and waits (up to ``wait_seconds``) until it
is granted or refused; the grant bounds the run. ``finish`` returns the share.
"""

from __future__ import annotations

import time

from chimera.framework import ChimeraClient, ClientConfig
from chimera.v1 import common_pb2, resources_pb2, resources_pb2_grpc

__all__ = ["ResourcesClient"]

_SERVICE = "chimera.v1.ResourcesService"
_IDEMPOTENT = tuple(f"{_SERVICE}/{m}" for m in ("GetInventory", "GetJob", "EstimateCost"))
_WAITING = (resources_pb2.JOB_STATUS_QUEUED,)


class ResourcesClient:
    """A ResourcesService caller with deadlines, retries of idempotent calls and a breaker."""

    def __init__(self, target: str, timeout_seconds: float = 10.0, poll_seconds: float = 0.1) -> None:
        self._client = ChimeraClient(
            ClientConfig(default_deadline_seconds=timeout_seconds, idempotent_methods=_IDEMPOTENT)
        )
        self._stub = self._client.stub(resources_pb2_grpc.ResourcesServiceStub, target)
        self._poll = poll_seconds

    def request_run(
        self,
        name: str,
        *,
        cpu_cores: float = 0.0,
        memory_bytes: int = 0,
        gpu_count: int = 0,
        minutes: int,
        population_size: int = 0,
        priority: int = common_pb2.PRIORITY_NORMAL,
        budget_usd: float = 0.0,
        max_cost_usd_per_hour: float = 0.0,
        layer: int = common_pb2.LAYER_GENETICS,
        wait_seconds: float = 0.0,
    ) -> resources_pb2.ScheduledJob:
        """Schedules a run; returns once it is granted or refused, or ``wait_seconds`` pass."""
        job = self._stub.ScheduleJob(
            resources_pb2.ScheduleJobRequest(
                name=name,
                request=resources_pb2.ResourceRequest(
                    requesting_layer=layer,
                    requirements=common_pb2.ResourceRequirements(
                        cpu_cores=cpu_cores, memory_bytes=memory_bytes, gpu_count=gpu_count
                    ),
                    priority=priority,
                    max_cost_usd_per_hour=max_cost_usd_per_hour,
                    duration_minutes=minutes,
                    purpose=name,
                ),
                budget_usd=budget_usd,
                population_size=population_size,
            )
        )
        give_up = time.monotonic() + wait_seconds
        while job.status in _WAITING and time.monotonic() < give_up:
            time.sleep(self._poll)
            job = self.job(job.id)
        return job

    def job(self, job_id: str) -> resources_pb2.ScheduledJob:
        return self._stub.GetJob(resources_pb2.GetJobRequest(job_id=job_id))

    def finish(self, job_id: str) -> resources_pb2.ScheduledJob:
        """Ends the run: a queued job is cancelled, a running one's share returned."""
        return self._stub.CancelJob(resources_pb2.CancelJobRequest(job_id=job_id))

    def inventory(self, refresh: bool = False) -> resources_pb2.Inventory:
        return self._stub.GetInventory(resources_pb2.GetInventoryRequest(refresh=refresh))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ResourcesClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
