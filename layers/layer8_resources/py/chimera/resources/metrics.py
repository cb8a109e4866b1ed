"""The ``layer8_*`` Prometheus metrics, registered on the server's registry."""

from __future__ import annotations

from chimera.framework import MetricsRegistry
from chimera.resources.core import DIMENSIONS, Amounts

__all__ = ["ResourceMetrics"]


class ResourceMetrics:
    """Allocations, refusals by resource, lease expiries, cost and the pool's use."""

    def __init__(self, registry: MetricsRegistry) -> None:
        self.allocations = registry.counter(
            "layer8_allocations_total", "Allocations granted, by requesting layer.", ("layer",)
        )
        self.refusals = registry.counter(
            "layer8_refusals_total",
            "Requests refused, by the resource named and why (no_room, too_large, "
            "max_cost, budget).",
            ("resource", "reason"),
        )
        self.expiries = registry.counter(
            "layer8_lease_expiries_total",
            "Allocations returned to the pool because they ran out, by cause "
            "(duration, heartbeat).",
            ("cause",),
        )
        self.releases = registry.counter(
            "layer8_releases_total", "Allocations returned by Release or CancelJob."
        )
        self.cost = registry.counter(
            "layer8_cost_usd_total", "Cost of the allocations granted, for their full duration."
        )
        self.cost_rate = registry.gauge(
            "layer8_active_cost_usd_per_hour", "Cost per hour of the active allocations."
        )
        self.allocated = registry.gauge(
            "layer8_allocated", "Held by active allocations, by resource.", ("resource",)
        )
        self.capacity = registry.gauge(
            "layer8_capacity", "Capacity of the pool, by resource.", ("resource",)
        )
        self.jobs = registry.counter(
            "layer8_jobs_total", "Jobs that reached a state, by state.", ("status",)
        )
        self.queued = registry.gauge("layer8_queued_jobs", "Jobs waiting in the queue.")

    def pool(self, capacity: Amounts, allocated: Amounts, cost_per_hour: float) -> None:
        for name in DIMENSIONS:
            self.capacity.labels(resource=name).set(capacity.get(name))
            self.allocated.labels(resource=name).set(allocated.get(name))
        self.cost_rate.set(cost_per_hour)
