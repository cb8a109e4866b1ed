"""KPI fan-out: every subscriber gets its own bounded queue.

Execution must never wait for a reader (a stalled gRPC stream to layer 5 must
not slow tasks down), so :meth:`KpiHub.publish` never blocks: when a
subscriber's queue is full the report is dropped *for that subscriber only*
and its drop counter goes up, which the service can expose so loss is visible.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class KpiRecord:
    """One finished task's KPIs (fields of the contract's ``KpiReport``)."""

    task_id: str
    agent_id: str
    module_version: str
    latency_ms: float
    fuel_consumed: int
    memory_peak_bytes: int
    status: str
    metrics: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    recorded_at: float = field(default_factory=time.time)
    module_name: str = ""
    genome_id: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))


class Subscription:
    """A subscriber's bounded queue; iterate it or call :meth:`get`."""

    def __init__(self, hub: KpiHub, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self._hub = hub
        self.maxsize = maxsize
        self._items: collections.deque[KpiRecord] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.delivered = 0
        self.dropped = 0

    def _offer(self, record: KpiRecord) -> bool:
        with self._cond:
            if self._closed:
                return False
            if len(self._items) >= self.maxsize:
                self.dropped += 1
                return False
            self._items.append(record)
            self.delivered += 1
            self._cond.notify()
            return True

    def get(self, timeout: float | None = None) -> KpiRecord | None:
        """Next record; None on timeout or once closed and drained."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._items or self._closed, timeout):
                return None
            return self._items.popleft() if self._items else None

    def __iter__(self) -> Iterator[KpiRecord]:
        """Yields records until the subscription is closed and drained."""
        while True:
            rec = self.get()
            if rec is None:
                return
            yield rec

    def pending(self) -> int:
        """Records queued and not yet read."""
        with self._cond:
            return len(self._items)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def close(self) -> None:
        """Unsubscribes (call when the stream ends); wakes a blocked reader."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._hub._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KpiHub:
    """Publishes KPI records to all current subscribers without blocking."""

    def __init__(self, default_queue_size: int = 1024) -> None:
        self.default_queue_size = default_queue_size
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self.published = 0

    def subscribe(self, maxsize: int | None = None) -> Subscription:
        """A new subscription that sees records published from now on."""
        sub = Subscription(self, maxsize or self.default_queue_size)
        with self._lock:
            self._subs.append(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, record: KpiRecord) -> int:
        """Offers ``record`` to every subscriber; returns how many accepted it."""
        with self._lock:
            subs = list(self._subs)
            self.published += 1
        return sum(1 for s in subs if s._offer(record))

    def subscriber_count(self) -> int:
        """Current number of subscribers."""
        with self._lock:
            return len(self._subs)

    def drop_counts(self) -> list[int]:
        """Per-subscriber drop counters, in subscription order."""
        with self._lock:
            return [s.dropped for s in self._subs]
