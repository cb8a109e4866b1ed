"""How layer 4 runs tasks (``ExecutionOptions``, filled from the server's flags) and
the limits a request may ask for within them."""

from __future__ import annotations

from dataclasses import dataclass

from chimera.execution.sandbox import WASM_PAGE, Limits
from chimera.execution.scheduler import RetryPolicy
from chimera.framework import InvalidArgument
from chimera.v1 import execution_pb2

__all__ = ["ExecutionOptions"]


@dataclass(frozen=True)
class ExecutionOptions:
    """How the service runs tasks (the CLI flags of ``server.py`` fill these).

    ``default_limits`` apply to zero members of a task's ``limits``;
    ``max_limits`` are the largest a caller may ask for. ``retry`` is the
    backoff (1 s x 2^n, capped at 300 s) and the default retry count.
    Each open KPI stream holds a server thread, so ``max_kpi_streams`` must
    stay below the server's ``max_workers`` to leave threads for unary RPCs.
    """

    concurrency: int = 2
    max_queue: int = 10_000
    default_limits: Limits = Limits()
    max_limits: Limits = Limits(
        fuel=1_000_000_000_000, memory_bytes=4 * 1024**3, timeout_ms=600_000.0
    )
    retry: RetryPolicy = RetryPolicy()
    tick_ms: float = 5.0
    cache_dir: str | None = None
    #: Where the deployment record lives (modules and slots); None = in memory only.
    state_dir: str | None = None
    kpi_buffer: int = 1024
    max_kpi_streams: int = 16
    kpi_retained: int = 10_000
    retain_finished: int = 10_000
    max_dead_letters: int = 10_000
    cancel_wait_seconds: float = 0.5

    def __post_init__(self) -> None:
        if min(self.concurrency, self.max_queue, self.kpi_buffer, self.max_kpi_streams) < 1:
            raise ValueError("concurrency, max_queue, kpi_buffer and max_kpi_streams must be >= 1")
        if self.kpi_retained < 0 or self.retain_finished < 1 or self.max_dead_letters < 1:
            raise ValueError("kpi_retained must be >= 0; retain_finished, max_dead_letters >= 1")
        d, m = self.default_limits, self.max_limits
        if d.fuel > m.fuel or d.memory_bytes > m.memory_bytes or d.timeout_ms > m.timeout_ms:
            raise ValueError(f"default limits {d} exceed the maximum limits {m}")

    def limits(self, requested: execution_pb2.ExecutionLimits | None) -> Limits:
        """A request's limits: zero members take the defaults; more than the maximum is
        INVALID_ARGUMENT naming the field."""
        d, m = self.default_limits, self.max_limits
        fuel = requested.fuel if requested is not None and requested.fuel else d.fuel
        memory = (
            requested.memory_bytes
            if requested is not None and requested.memory_bytes
            else d.memory_bytes
        )
        timeout = (
            float(requested.timeout_ms)
            if requested is not None and requested.timeout_ms
            else d.timeout_ms
        )
        if fuel > m.fuel:
            raise InvalidArgument("limits.fuel", f"must be at most {m.fuel} (service maximum)")
        if memory < WASM_PAGE:
            raise InvalidArgument(
                "limits.memory_bytes", f"must be at least {WASM_PAGE} (one wasm page) when set"
            )
        if memory > m.memory_bytes:
            raise InvalidArgument(
                "limits.memory_bytes", f"must be at most {m.memory_bytes} (service maximum)"
            )
        if timeout > m.timeout_ms:
            raise InvalidArgument(
                "limits.timeout_ms", f"must be at most {int(m.timeout_ms)} (service maximum)"
            )
        return Limits(fuel=fuel, memory_bytes=memory, timeout_ms=timeout)
