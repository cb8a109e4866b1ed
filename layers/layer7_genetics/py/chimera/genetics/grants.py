"""Grants from resources (layer 8) that bound agents' runs.

``BeginRun`` schedules a job with layer 8 (``ScheduleJob``, then ``GetJob``
until it is granted or refused) and holds the grant for the agent; each
``RunGeneration`` of the agent asks :meth:`RunGrants.bound` for the largest
population it may breed, which refuses once the run's wall time has run out
(and releases the grant). ``EndRun`` releases it (``CancelJob``).

With a genome store, every grant held is also recorded there (``run_grants``)
from BeginRun until it is released, and a service started on the same store
re-adopts them: the run goes on under the same layer-8 job, within the wall
time it had left, and its EndRun releases that job. Layer 8 keeps its jobs
across its own restarts (its ledger), and its expiry of the allocation still
returns the share of a run whose caller never ended it.
"""

from __future__ import annotations

import base64
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from chimera.framework.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    UpstreamError,
)
from chimera.genetics.store import GenomeStore, StoredGrant
from chimera.v1 import common_pb2, genetics_pb2, resources_pb2, resources_pb2_grpc

__all__ = ["DEFAULT_WAIT_SECONDS", "Held", "RunGrants"]

DEFAULT_WAIT_SECONDS = 30
_RUNNING = resources_pb2.JOB_STATUS_RUNNING
_QUEUED = resources_pb2.JOB_STATUS_QUEUED


@dataclass
class Held:
    """An agent's grant: the job, the bounds and when the run's wall time ends."""

    agent_id: str
    job: resources_pb2.ScheduledJob
    max_population: int
    wall_time_seconds: int
    #: time.monotonic() when the wall time runs out.
    ends_at: float
    released: bool = False

    def status(self, now: float) -> genetics_pb2.RunGrantStatus:
        return genetics_pb2.RunGrantStatus(
            agent_id=self.agent_id,
            job=self.job,
            max_population=self.max_population,
            wall_time_seconds=self.wall_time_seconds,
            seconds_left=0.0 if self.released else max(0.0, self.ends_at - now),
            released=self.released,
        )


class RunGrants:
    """The grants agents' runs hold, by agent; thread-safe."""

    def __init__(
        self,
        resources: resources_pb2_grpc.ResourcesServiceStub,
        *,
        timeout_s: float = 10.0,
        poll_s: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        store: GenomeStore | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._resources = resources
        self._timeout_s = timeout_s
        self._poll_s = poll_s
        self._clock = clock
        self._wall_clock = wall_clock
        self._store = store
        self._lock = threading.Lock()
        self._held: dict[str, Held] = {}
        for stored in store.grants() if store is not None else ():
            self._held[stored.agent_id] = self._adopted(stored)

    def _adopted(self, stored: StoredGrant) -> Held:
        """A recorded grant, its wall time counted on from the record (a restart's downtime included)."""
        job = resources_pb2.ScheduledJob.FromString(base64.b64decode(stored.job))
        left = stored.ends_at - self._wall_clock()
        return Held(stored.agent_id, job, stored.max_population, stored.wall_time_seconds, self._clock() + left)

    def _record(self, held: Held) -> None:
        if self._store is not None:
            self._store.save_grant(
                StoredGrant(
                    held.agent_id,
                    base64.b64encode(held.job.SerializeToString()).decode("ascii"),
                    held.max_population,
                    held.wall_time_seconds,
                    self._wall_clock() + (held.ends_at - self._clock()),
                )
            )

    def _forget(self, agent_id: str) -> None:
        if self._store is not None:
            self._store.drop_grant(agent_id)

    def begin(self, request: genetics_pb2.BeginRunRequest) -> genetics_pb2.RunGrantStatus:
        agent = request.agent_id
        with self._lock:
            current = self._held.get(agent)
            if current is not None and self._clock() < current.ends_at:
                raise FailedPrecondition(
                    f"agent {agent!r} already holds job {current.job.id} "
                    f"({current.ends_at - self._clock():.0f} s left); EndRun first"
                )
        if current is not None:
            self._release(current)
            with self._lock:
                self._held.pop(agent, None)
                self._forget(agent)
        needs = request.resources
        amounts = needs.requirements
        if not (amounts.cpu_cores or amounts.memory_bytes or amounts.gpu_count or amounts.storage_bytes):
            raise InvalidArgument("resources.requirements", "must ask for at least one resource")
        job = self._call(
            "ScheduleJob",
            self._resources.ScheduleJob,
            resources_pb2.ScheduleJobRequest(
                name=f"evolve {agent}",
                request=resources_pb2.ResourceRequest(
                    requesting_layer=common_pb2.LAYER_GENETICS,
                    requirements=needs.requirements,
                    priority=needs.priority or common_pb2.PRIORITY_NORMAL,
                    duration_minutes=math.ceil(needs.wall_time_seconds / 60),
                    purpose=f"layer 7: a genetic-algorithm run of agent {agent}",
                ),
                budget_usd=needs.budget_usd,
                population_size=needs.population_size,
            ),
        )
        give_up = self._clock() + (request.wait_seconds or DEFAULT_WAIT_SECONDS)
        while job.status == _QUEUED and self._clock() < give_up:
            time.sleep(self._poll_s)
            job = self._call("GetJob", self._resources.GetJob, resources_pb2.GetJobRequest(job_id=job.id))
        if job.status != _RUNNING:
            if job.status == _QUEUED:
                self._call("CancelJob", self._resources.CancelJob, resources_pb2.CancelJobRequest(job_id=job.id))
            status = resources_pb2.JobStatus.Name(job.status)
            why = job.reason or f"still queued after {request.wait_seconds or DEFAULT_WAIT_SECONDS} s"
            raise ResourceExhausted(f"resources did not grant the run of agent {agent!r} ({status}): {why}")
        wall = min(needs.wall_time_seconds, job.grant.wall_time_seconds)
        held = Held(agent, job, job.grant.max_population, wall, self._clock() + wall)
        with self._lock:
            self._held[agent] = held
            self._record(held)
        return held.status(self._clock())

    def end(self, agent_id: str) -> genetics_pb2.RunGrantStatus:
        """Releases the agent's grant; it stays held (and EndRun can be sent again) until layer 8 answers."""
        held = self.held(agent_id)
        if held is None:
            raise NotFound(f"agent {agent_id!r} holds no grant (BeginRun was not called)")
        self._release(held)
        with self._lock:
            if self._held.get(agent_id) is held:
                del self._held[agent_id]
                self._forget(agent_id)
        return held.status(self._clock())

    def status(self, held: Held) -> genetics_pb2.RunGrantStatus:
        return held.status(self._clock())

    def held(self, agent_id: str) -> Held | None:
        with self._lock:
            return self._held.get(agent_id)

    def bound(self, agent_id: str) -> Held:
        """The agent's grant, still within its wall time; refuses (and releases) otherwise."""
        held = self.held(agent_id)
        if held is None:
            raise FailedPrecondition(
                f"agent {agent_id!r} holds no grant: this service asks resources before a run, "
                "call BeginRun first"
            )
        if self._clock() >= held.ends_at:
            with self._lock:
                self._held.pop(agent_id, None)
                self._forget(agent_id)
            self._release(held)
            raise ResourceExhausted(
                f"grant: the run's wall time of {held.wall_time_seconds} s (job {held.job.id}) "
                "has run out; the grant is released, BeginRun again for more"
            )
        return held

    def _release(self, held: Held) -> None:
        held.job = self._call(
            "CancelJob", self._resources.CancelJob, resources_pb2.CancelJobRequest(job_id=held.job.id)
        )
        held.released = True

    def _call(
        self, name: str, rpc: Callable[..., resources_pb2.ScheduledJob], request: object
    ) -> resources_pb2.ScheduledJob:
        """One layer-8 call; a failure keeps its status (e.g. INVALID_ARGUMENT naming
        layer 8's field, UNAVAILABLE) with the RPC named."""
        try:
            # wait_for_ready: a layer 8 that is restarting is waited for (within the timeout).
            return rpc(request, timeout=self._timeout_s, wait_for_ready=True)
        except grpc.RpcError as exc:
            raise UpstreamError.from_rpc(exc, f"resources {name}") from exc
