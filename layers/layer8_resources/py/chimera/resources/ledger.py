"""The pool's and the job queue's record on disk (``--state-dir``): a restart keeps every grant.

``ledger.json`` under the state directory holds every allocation (active and
the retained ended ones) and every job (queued, running and the retained
finished ones), with the requests they were granted for. It is replaced
atomically (:func:`chimera.framework.statefile.write_json`) whenever its
content changes, under the pool's lock, so a SIGKILL leaves the last
complete state. A server started on the same directory reads it back before
it serves: a running job keeps its allocation and grant (its holder can
still release it with ``CancelJob``), a queued one its place, and leases and
durations keep running on wall-clock time, so whatever ran out while the
server was down expires on its first check.
"""

from __future__ import annotations

import base64
from dataclasses import asdict
from pathlib import Path
from typing import Any

from chimera.framework.statefile import read_json, write_json
from chimera.resources.core import Amounts, Cost
from chimera.resources.jobs import Grant, Job, JobQueue
from chimera.resources.pool import Allocation, Pool
from chimera.v1 import resources_pb2

__all__ = ["FORMAT", "Ledger"]

FORMAT = 1


class Ledger:
    """Writes and reads ``<directory>/ledger.json``."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / "ledger.json"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._written: Any = None

    def save(self, pool: Pool, queue: JobQueue) -> None:
        """Writes the current state if it differs from the last one written (caller holds the lock)."""
        active, ended = pool.export()
        running, finished = queue.export()
        document = {
            "format": FORMAT,
            "allocations": [_allocation_json(a) for a in (*active, *ended)],
            "jobs": [_job_json(j) for j in (*running, *finished)],
        }
        if document != self._written:
            write_json(self.path, document)
            self._written = document

    def restore(self, pool: Pool, queue: JobQueue) -> int:
        """Puts the recorded allocations and jobs back; returns how many records were read."""
        document = read_json(self.path)
        if document is None:
            return 0
        if document.get("format") != FORMAT:
            raise ValueError(f"{self.path}: format {document.get('format')!r}, expected {FORMAT}")
        try:
            allocations = [_allocation(a) for a in document["allocations"]]
            jobs = [_job(j) for j in document["jobs"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{self.path}: not a valid ledger: {exc!r}") from None
        pool.restore(allocations)
        queue.restore(jobs)
        self._written = document
        return len(allocations) + len(jobs)


def _request_json(request: resources_pb2.ResourceRequest) -> str:
    return base64.b64encode(request.SerializeToString()).decode("ascii")


def _request(text: str) -> resources_pb2.ResourceRequest:
    return resources_pb2.ResourceRequest.FromString(base64.b64decode(text))


def _cost(data: dict[str, Any]) -> Cost:
    return Cost(tuple(data["shares"]), data["per_hour"], data["total"], data["duration_minutes"])  # type: ignore[arg-type]


def _allocation_json(a: Allocation) -> dict[str, Any]:
    return {
        "id": a.id,
        "request": _request_json(a.request),
        "amounts": asdict(a.amounts),
        "device_ids": list(a.device_ids),
        "cost": asdict(a.cost),
        "status": a.status,
        "allocated_at": a.allocated_at,
        "expires_at": a.expires_at,
        "lease_expires_at": a.lease_expires_at,
        "ended_at": a.ended_at,
        "job_id": a.job_id,
    }


def _allocation(d: dict[str, Any]) -> Allocation:
    return Allocation(
        id=d["id"],
        request=_request(d["request"]),
        amounts=Amounts(**d["amounts"]),
        device_ids=tuple(d["device_ids"]),
        cost=_cost(d["cost"]),
        status=int(d["status"]),
        allocated_at=float(d["allocated_at"]),
        expires_at=float(d["expires_at"]),
        lease_expires_at=d["lease_expires_at"],
        ended_at=d["ended_at"],
        job_id=d["job_id"],
    )


def _job_json(j: Job) -> dict[str, Any]:
    return {
        "id": j.id,
        "name": j.name,
        "request": _request_json(j.request),
        "amounts": asdict(j.amounts),
        "budget_usd": j.budget_usd,
        "population_size": j.population_size,
        "estimated_cost": asdict(j.estimated_cost),
        "submitted_at": j.submitted_at,
        "seq": j.seq,
        "status": j.status,
        "reason": j.reason,
        "allocation_id": j.allocation_id,
        "grant": None if j.grant is None else {**asdict(j.grant), "device_ids": list(j.grant.device_ids)},
    }


def _job(d: dict[str, Any]) -> Job:
    grant = d["grant"]
    return Job(
        id=d["id"],
        name=d["name"],
        request=_request(d["request"]),
        amounts=Amounts(**d["amounts"]),
        budget_usd=float(d["budget_usd"]),
        population_size=int(d["population_size"]),
        estimated_cost=_cost(d["estimated_cost"]),
        submitted_at=float(d["submitted_at"]),
        seq=int(d["seq"]),
        status=int(d["status"]),
        reason=d["reason"],
        allocation_id=d["allocation_id"],
        grant=None if grant is None else Grant(**{**grant, "device_ids": tuple(grant["device_ids"])}),
    )
