"""What the host offers, read from layer-1 observations.

Planning sizes tasks from the cores and memory of the host that will run
them, as Discovery (layer 1) measured them:

* cores: ``cpu.count.usable`` (the cores the process may run on), else
  ``cpu.count.logical``;
* memory: ``memory.available``;
* accelerators: ``accelerator.count``.

The newest batch (by ``collected_at``) that has a metric wins. Counts are
static facts, not momentary load, so the same host always gives the same
plan. Without observations in the request the planner asks the configured
DiscoveryService (``Collect`` of CPU, memory and accelerators); when that is
not configured or fails, documented defaults are used and the plan carries a
``capacity.unknown`` risk.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from chimera.framework import ChimeraClient, CircuitOpenError, ClientConfig
from chimera.v1 import discovery_pb2, discovery_pb2_grpc

__all__ = ["DEFAULT_CAPACITY", "Capacity", "DiscoverySource", "capacity_from_batches"]

_log = logging.getLogger("chimera.planning.capacity")
COLLECT = "chimera.v1.DiscoveryService/Collect"


@dataclass(frozen=True)
class Capacity:
    """Host capacity; ``source`` says where it came from."""

    cores: float
    memory_bytes: int
    gpu_count: int
    source: str

    @property
    def measured(self) -> bool:
        return self.source != "defaults"


#: Used when no observation is available: a small, common machine.
DEFAULT_CAPACITY = Capacity(cores=2.0, memory_bytes=4 << 30, gpu_count=0, source="defaults")


def capacity_from_batches(
    batches: Sequence[discovery_pb2.DataBatch], source: str
) -> Capacity | None:
    """Capacity from observations, or None when they hold no core count."""
    ordered = sorted(
        enumerate(batches), key=lambda ib: (ib[1].collected_at.ToNanoseconds(), ib[0]), reverse=True
    )

    def latest(*names: str) -> float | None:
        for name in names:
            for _, batch in ordered:
                for p in batch.points:
                    if p.name == name:
                        return p.value
        return None

    cores = latest("cpu.count.usable", "cpu.count.logical")
    if cores is None or cores <= 0:
        return None
    memory = latest("memory.available") or 0.0
    gpus = latest("accelerator.count") or 0.0
    return Capacity(
        cores=float(cores),
        memory_bytes=int(max(memory, 0)),
        gpu_count=int(max(gpus, 0)),
        source=source,
    )


class DiscoverySource:
    """Asks a DiscoveryService for the capacity (short deadline, circuit breaker)."""

    def __init__(self, target: str, timeout_seconds: float = 5.0) -> None:
        self.target = target
        self._client = ChimeraClient(
            ClientConfig(default_deadline_seconds=timeout_seconds, idempotent_methods=(COLLECT,))
        )
        self._stub = self._client.stub(discovery_pb2_grpc.DiscoveryServiceStub, target)

    def capacity(self) -> Capacity | None:
        request = discovery_pb2.CollectRequest(
            probes=[
                discovery_pb2.PROBE_CPU,
                discovery_pb2.PROBE_MEMORY,
                discovery_pb2.PROBE_ACCELERATORS,
            ]
        )
        try:
            batch = self._stub.Collect(request)
        except (grpc.RpcError, CircuitOpenError) as exc:
            _log.warning("discovery at %s failed (%s); using default capacity", self.target, exc)
            return None
        return capacity_from_batches([batch], f"discovery:{self.target}")

    def close(self) -> None:
        self._client.close()
