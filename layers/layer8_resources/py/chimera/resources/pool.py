"""Allocations from the host's finite pool: grant, lease, expiry, release.

The pool is the probed host (one node: its cores, memory, storage and
accelerators). A request is placed by the core's solver against what active
allocations leave free; one that does not fit is :class:`Refused`, naming
the resource (``no_room`` now, or ``too_large`` for the whole pool), and one
whose price per hour exceeds its ``max_cost_usd_per_hour`` is refused naming
that field.

Every allocation expires at ``allocated_at + duration_minutes``; with
``lease_seconds`` it also expires when its heartbeat lease is not renewed in
time, so a holder that dies returns its share. Expiry is applied on every
call (the clock is injected, so tests move time by hand); the share returns
at the moment the allocation ran out, which is recorded as ``ended_at``.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from chimera.framework import FailedPrecondition, NotFound
from chimera.resources.core import Amounts, Cost, Mode, Outcome, Rates, ResourcesCore
from chimera.resources.core import SolverDevice, SolverNode
from chimera.resources.inventory import HostInventory
from chimera.resources.metrics import ResourceMetrics
from chimera.v1 import common_pb2, resources_pb2

__all__ = ["Allocation", "Clock", "Pool", "Refused"]

#: Seconds since the epoch (``time.time`` in the server).
Clock = Callable[[], float]

ACTIVE = resources_pb2.ALLOCATION_STATUS_ACTIVE
RELEASED = resources_pb2.ALLOCATION_STATUS_RELEASED
EXPIRED = resources_pb2.ALLOCATION_STATUS_EXPIRED


@dataclass(frozen=True)
class Allocation:
    """One grant and its lifecycle (times in seconds since the epoch)."""

    id: str
    request: resources_pb2.ResourceRequest
    amounts: Amounts
    device_ids: tuple[str, ...]
    cost: Cost
    status: int
    allocated_at: float
    expires_at: float
    lease_expires_at: float | None = None
    ended_at: float | None = None
    job_id: str = ""

    def deadline(self) -> float:
        if self.lease_expires_at is None:
            return self.expires_at
        return min(self.expires_at, self.lease_expires_at)


class Refused(Exception):
    """A request the pool will not grant; ``resource`` is the field at fault."""

    def __init__(self, reason: str, resource: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # no_room, too_large, max_cost
        self.resource = resource
        self.message = message


def _unit(dimension: str, value: float) -> str:
    if dimension.endswith("_bytes"):
        return f"{value / (1 << 30):.3g} GiB"
    if dimension == "cpu_cores":
        return f"{value:g} cores"
    return f"{value:g}"


def refusal(outcome: Outcome) -> Refused:
    """The :class:`Refused` for a solver outcome that is not ``placed``."""
    field = f"requirements.{outcome.dimension}"
    asked = _unit(outcome.dimension, outcome.requested)
    has = _unit(outcome.dimension, outcome.available)
    if outcome.kind == "too_large":
        text = f"{field}: requested {asked} but the whole pool has {has}"
    else:
        text = f"{field}: requested {asked} but only {has} free now"
    return Refused(outcome.kind, outcome.dimension, text)


def _over_cost(request: resources_pb2.ResourceRequest, cost: Cost) -> Refused | None:
    limit = request.max_cost_usd_per_hour
    if limit > 0 and cost.per_hour > limit:
        return Refused(
            "max_cost",
            "max_cost_usd_per_hour",
            f"max_cost_usd_per_hour: the request costs {cost.per_hour:.6g} USD/h, "
            f"above the limit of {limit:.6g} USD/h",
        )
    return None


class Pool:
    """The ledger of allocations over one host; thread-safe."""

    def __init__(
        self,
        core: ResourcesCore,
        rates: Rates,
        host: HostInventory,
        clock: Clock,
        metrics: ResourceMetrics,
        retention: int = 1000,
    ) -> None:
        self._core = core
        self._rates = rates
        self._host = host
        self._clock = clock
        self._metrics = metrics
        self._retention = retention
        self._active: dict[str, Allocation] = {}
        self._ended: OrderedDict[str, Allocation] = OrderedDict()
        self.lock = threading.RLock()
        self._publish()

    # --- reading --------------------------------------------------------------

    @property
    def rates(self) -> Rates:
        return self._rates

    def host(self) -> HostInventory:
        with self.lock:
            return self._host

    def set_host(self, host: HostInventory) -> None:
        """A fresh probe: capacity changes, allocations stay as granted."""
        with self.lock:
            self._host = host
            self._publish()

    def holders(self) -> dict[str, str]:
        """Device id -> id of the active allocation holding it."""
        with self.lock:
            return {d: a.id for a in self._active.values() for d in a.device_ids}

    def totals(self) -> tuple[Amounts, Amounts]:
        """(capacity, allocated) of the pool."""
        with self.lock:
            return self._capacity(), self._allocated()

    def active_count(self) -> int:
        with self.lock:
            return len(self._active)

    def get(self, allocation_id: str) -> Allocation:
        with self.lock:
            found = self._active.get(allocation_id) or self._ended.get(allocation_id)
        if found is None:
            raise NotFound(f"allocation {allocation_id!r} is unknown (never granted, or forgotten)")
        return found

    def status(self, allocation_id: str) -> int:
        """The allocation's status; UNSPECIFIED (0) once forgotten."""
        with self.lock:
            found = self._active.get(allocation_id) or self._ended.get(allocation_id)
        return found.status if found is not None else resources_pb2.ALLOCATION_STATUS_UNSPECIFIED

    def list(self, status: int = 0, layer: int = 0, limit: int = 100) -> list[Allocation]:
        """Newest first, filtered by status and requesting layer."""
        with self.lock:
            every = [*self._active.values(), *self._ended.values()]
        every.sort(key=lambda a: (a.allocated_at, a.id), reverse=True)
        chosen = [
            a
            for a in every
            if (not status or a.status == status)
            and (not layer or a.request.requesting_layer == layer)
        ]
        return chosen[:limit]

    def export(self) -> tuple[list[Allocation], list[Allocation]]:
        """(active, retained ended) allocations, for the ledger."""
        with self.lock:
            return list(self._active.values()), list(self._ended.values())

    def restore(self, allocations: Sequence[Allocation]) -> None:
        """Puts recorded allocations back (at start-up, before any call)."""
        with self.lock:
            if self._active or self._ended:
                raise ValueError("restore: the pool already holds allocations")
            for a in allocations:
                (self._active if a.status == ACTIVE else self._ended)[a.id] = a
            self._publish()

    # --- pricing and placing --------------------------------------------------

    def price(self, amounts: Amounts, duration_minutes: int) -> Cost:
        return self._core.price(self._rates, [(amounts, duration_minutes)])[0]

    def check_fits_pool(self, amounts: Amounts) -> Refused | None:
        """The refusal when ``amounts`` exceed the whole pool, else None."""
        with self.lock:
            node = self._node(empty=True)
        outcome = self._core.solve([node], [amounts], Mode.PLACE_ALL_THAT_FIT)[0]
        return None if outcome.placed else refusal(outcome)

    def allocate(
        self, request: resources_pb2.ResourceRequest, amounts: Amounts, job_id: str = ""
    ) -> Allocation:
        """Grants ``request`` now or raises :class:`Refused`."""
        cost = self.price(amounts, request.duration_minutes)
        over = _over_cost(request, cost)
        if over is not None:
            self._refused(over)
            raise over
        with self.lock:
            self.expire()
            outcome = self._core.solve([self._node()], [amounts], Mode.PLACE_ALL_THAT_FIT)[0]
            if not outcome.placed:
                err = refusal(outcome)
                self._refused(err)
                raise err
            return self._grant(request, amounts, cost, outcome, job_id)

    def allocate_in_order(
        self, items: Sequence[tuple[resources_pb2.ResourceRequest, Amounts, Cost, str]]
    ) -> list[Allocation | None]:
        """Grants ``(request, amounts, cost, job_id)`` items strictly in order,
        stopping at the first that does not fit now; None for those not granted."""
        with self.lock:
            self.expire()
            outcomes = self._core.solve(
                [self._node()], [amounts for _, amounts, _, _ in items], Mode.STOP_AT_FIRST_MISS
            )
            return [
                self._grant(request, amounts, cost, outcome, job_id) if outcome.placed else None
                for (request, amounts, cost, job_id), outcome in zip(items, outcomes)
            ]

    # --- ending ---------------------------------------------------------------

    def expire(self) -> list[Allocation]:
        """Ends every allocation whose duration or heartbeat lease ran out."""
        now = self._clock()
        with self.lock:
            done = [a for a in self._active.values() if a.deadline() <= now]
            for a in done:
                cause = "duration" if a.deadline() == a.expires_at else "heartbeat"
                self._end(a, EXPIRED, a.deadline())
                self._metrics.expiries.labels(cause=cause).inc()
            return done

    def release(self, allocation_id: str) -> Allocation:
        """Returns an allocation's share (idempotent: an ended one is returned as is)."""
        with self.lock:
            self.expire()
            a = self._active.get(allocation_id)
            if a is None:
                return self.get(allocation_id)
            self._metrics.releases.inc()
            return self._end(a, RELEASED, self._clock())

    def renew(self, allocation_id: str) -> Allocation:
        """Extends the heartbeat lease by its ``lease_seconds`` (never past ``expires_at``)."""
        with self.lock:
            self.expire()
            a = self._active.get(allocation_id)
            if a is None:
                ended = self.get(allocation_id)
                raise FailedPrecondition(
                    f"allocation {allocation_id!r} has ended "
                    f"({resources_pb2.AllocationStatus.Name(ended.status)})"
                )
            if a.lease_expires_at is None:
                return a
            lease = min(self._clock() + a.request.lease_seconds, a.expires_at)
            renewed = replace(a, lease_expires_at=lease)
            self._active[a.id] = renewed
            return renewed

    # --- internals (callers hold the lock) -------------------------------------

    def _capacity(self) -> Amounts:
        h = self._host
        gpus = h.accelerators
        gpu_memory = sum(d.memory_bytes for d in gpus)
        return Amounts(h.cpu_cores, h.memory_bytes, len(gpus), gpu_memory, h.storage_bytes)

    def _allocated(self) -> Amounts:
        # Devices are held whole: their count and all their memory are taken.
        held = list(self._active.values())
        ids = {d for a in held for d in a.device_ids}
        devices = [d for d in self._host.accelerators if d.id in ids]
        return Amounts(
            sum(a.amounts.cpu_cores for a in held),
            sum(a.amounts.memory_bytes for a in held),
            len(devices),
            sum(d.memory_bytes for d in devices),
            sum(a.amounts.storage_bytes for a in held),
        )

    def _node(self, empty: bool = False) -> SolverNode:
        cap = self._capacity()
        used = Amounts() if empty else self._allocated()
        held = set() if empty else {d for a in self._active.values() for d in a.device_ids}
        free = Amounts(
            cpu_cores=max(cap.cpu_cores - used.cpu_cores, 0.0),
            memory_bytes=max(cap.memory_bytes - used.memory_bytes, 0),
            storage_bytes=max(cap.storage_bytes - used.storage_bytes, 0),
        )
        devices = tuple(
            SolverDevice(d.memory_bytes, d.id not in held) for d in self._host.accelerators
        )
        return SolverNode(replace(cap, gpu_count=0, gpu_memory_bytes=0), free, devices)

    def _grant(
        self,
        request: resources_pb2.ResourceRequest,
        amounts: Amounts,
        cost: Cost,
        outcome: Outcome,
        job_id: str,
    ) -> Allocation:
        now = self._clock()
        accelerators = self._host.accelerators
        stored = resources_pb2.ResourceRequest()
        stored.CopyFrom(request)
        if not stored.priority:
            stored.priority = common_pb2.PRIORITY_NORMAL
        a = Allocation(
            id=f"alloc-{uuid.uuid4().hex[:16]}",
            request=stored,
            amounts=amounts,
            device_ids=tuple(accelerators[i].id for i in outcome.devices),
            cost=cost,
            status=ACTIVE,
            allocated_at=now,
            expires_at=now + 60.0 * request.duration_minutes,
            lease_expires_at=now + request.lease_seconds if request.lease_seconds else None,
            job_id=job_id,
        )
        self._active[a.id] = a
        layer = common_pb2.Layer.Name(request.requesting_layer)
        self._metrics.allocations.labels(layer=layer).inc()
        self._metrics.cost.inc(cost.total)
        self._publish()
        return a

    def _end(self, a: Allocation, status: int, when: float) -> Allocation:
        ended = replace(a, status=status, ended_at=when)
        del self._active[a.id]
        self._ended[a.id] = ended
        while len(self._ended) > self._retention:
            self._ended.popitem(last=False)
        self._publish()
        return ended

    def _refused(self, err: Refused) -> None:
        self._metrics.refusals.labels(resource=err.resource, reason=err.reason).inc()

    def _publish(self) -> None:
        rate = sum(a.cost.per_hour for a in self._active.values())
        self._metrics.pool(self._capacity(), self._allocated(), rate)
