"""A circuit breaker: stop calling a target that keeps failing, try again later.

Without it every caller of a dead layer waits for its own deadline. With it,
after ``failure_threshold`` consecutive failures the breaker opens and calls
fail at once with ``CircuitOpenError`` (no network traffic); after
``cooldown_seconds`` one trial call is let through (half-open): success closes
the breaker, failure opens it for another cool-down.

Only codes that say the target is unwell count as failures (UNAVAILABLE,
DEADLINE_EXCEEDED, INTERNAL, UNKNOWN by default). INVALID_ARGUMENT, NOT_FOUND
and the like are healthy answers and count as successes; CANCELLED (the caller
gave up) counts as neither. The clock is injectable so tests need not sleep.
"""

from __future__ import annotations

import dataclasses
import enum
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass

import grpc

__all__ = [
    "DEFAULT_FAILURE_CODES",
    "BreakerState",
    "BreakerStats",
    "CircuitBreaker",
    "CircuitOpenError",
]

DEFAULT_FAILURE_CODES: frozenset[grpc.StatusCode] = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(grpc.RpcError):
    """Raised instead of calling while the breaker is open.

    It is a ``grpc.RpcError`` with code UNAVAILABLE, so callers that already
    handle an unreachable target handle this too.
    """

    def __init__(self, name: str, retry_in_seconds: float) -> None:
        self.name = name
        self.retry_in_seconds = retry_in_seconds
        super().__init__(self.details())

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        if self.retry_in_seconds > 0:
            when = f"next trial call in {self.retry_in_seconds:.1f} s"
        else:
            when = "a trial call is in progress"
        return f"circuit breaker for {self.name} is open after repeated failures; {when}"

    def __str__(self) -> str:
        return self.details()


@dataclass
class BreakerStats:
    """Counters since the breaker was made; ``rejected`` calls never left the process."""

    allowed: int = 0
    rejected: int = 0
    successes: int = 0
    failures: int = 0
    opened: int = 0
    consecutive_failures: int = 0


class CircuitBreaker:
    """Thread-safe; ``acquire`` before a call, ``record`` its status code after."""

    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = 5,
        cooldown_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        failure_codes: Collection[grpc.StatusCode] = DEFAULT_FAILURE_CODES,
    ) -> None:
        if isinstance(failure_threshold, bool) or not failure_threshold >= 1:
            raise ValueError(f"failure_threshold must be >= 1 (got {failure_threshold!r})")
        if not cooldown_seconds > 0:
            raise ValueError(f"cooldown_seconds must be > 0 (got {cooldown_seconds!r})")
        self.name = name
        self._threshold = failure_threshold
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._failure_codes = frozenset(failure_codes)
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._trial_in_flight = False
        self._stats = BreakerStats()

    @property
    def state(self) -> BreakerState:
        """Current state; OPEN reads as HALF_OPEN once the cool-down has passed."""
        with self._lock:
            return self._current_state()

    @property
    def stats(self) -> BreakerStats:
        """A snapshot of the counters."""
        with self._lock:
            return dataclasses.replace(self._stats)

    def acquire(self) -> bool:
        """Permits one call or raises CircuitOpenError; True if the call is the half-open trial."""
        with self._lock:
            state = self._current_state()
            if state is BreakerState.OPEN or (
                state is BreakerState.HALF_OPEN and self._trial_in_flight
            ):
                self._stats.rejected += 1
                retry_in = max(self._opened_at + self._cooldown - self._clock(), 0.0)
                raise CircuitOpenError(self.name, retry_in)
            self._stats.allowed += 1
            if state is BreakerState.HALF_OPEN:
                self._state = BreakerState.HALF_OPEN
                self._trial_in_flight = True
                return True
            return False

    def record(self, code: grpc.StatusCode | None, *, trial: bool = False) -> None:
        """Reports how a permitted call ended (None counts as OK); pass acquire()'s result as trial."""
        with self._lock:
            if trial:
                self._trial_in_flight = False
            if code == grpc.StatusCode.CANCELLED:
                return
            stats = self._stats
            if code in self._failure_codes:
                stats.failures += 1
                stats.consecutive_failures += 1
                closed = self._state is BreakerState.CLOSED
                if trial or (closed and stats.consecutive_failures >= self._threshold):
                    self._state = BreakerState.OPEN
                    self._opened_at = self._clock()
                    stats.opened += 1
            else:
                stats.successes += 1
                stats.consecutive_failures = 0
                self._state = BreakerState.CLOSED

    def _current_state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() >= self._opened_at + self._cooldown:
            return BreakerState.HALF_OPEN
        return self._state
