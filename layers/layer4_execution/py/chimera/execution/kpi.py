"""KPI fan-out: every subscriber gets its own bounded queue.

Execution must never wait for a reader (a stalled gRPC stream to layer 5 must
not slow tasks down), so :meth:`KpiHub.publish` never blocks: when a
subscriber's queue is full the report is dropped *for that subscriber only*
and its drop counter goes up, which the service can expose so loss is visible
(``on_drop`` is told at once, even while that subscriber's reader is blocked;
``on_publish`` counts every report).

The hub also owns the KPI history a late subscriber may ask for: the newest
``retain`` reports, kept under the same lock as the fan-out, so a subscriber
opened with ``since`` gets every report exactly once (from the backlog or
live). It caps its subscribers and refuses new ones once closed.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
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

    def matches(self, module_name: str, agent_id: str) -> bool:
        """True when the report is of this slot and agent (an empty one matches any)."""
        return (not module_name or self.module_name == module_name) and (
            not agent_id or self.agent_id == agent_id
        )


class TooManySubscribers(Exception):
    """The hub already has ``max_subscribers`` subscribers."""

    def __init__(self, open_now: int, limit: int) -> None:
        super().__init__(f"{open_now} subscribers (limit {limit})")
        self.open_now = open_now
        self.limit = limit


class HubClosed(RuntimeError):
    """Subscribe after :meth:`KpiHub.close`."""


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

    def _offer(self, record: KpiRecord) -> bool | None:
        """True: queued; False: dropped (queue full); None: closed."""
        with self._cond:
            if self._closed:
                return None
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

    def follow(
        self, backlog: Iterable[KpiRecord], active: Callable[[], bool], poll_s: float = 0.25
    ) -> Iterator[KpiRecord]:
        """Yields ``backlog`` (from :meth:`KpiHub.subscribe_since`), then live records
        until the subscription is closed or ``active()`` (checked every ``poll_s``) is false."""
        yield from backlog
        while active():
            live = self.get(timeout=poll_s)
            if live is not None:
                yield live
            elif self._closed:
                return

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

    def __init__(
        self,
        default_queue_size: int = 1024,
        *,
        retain: int = 0,
        max_subscribers: int | None = None,
        on_drop: Callable[[int], object] | None = None,
        on_publish: Callable[[], object] | None = None,
    ) -> None:
        if retain < 0:
            raise ValueError("retain must be >= 0")
        self.default_queue_size = default_queue_size
        self.max_subscribers = max_subscribers
        self._on_drop = on_drop
        self._on_publish = on_publish
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._retained: collections.deque[KpiRecord] = collections.deque(maxlen=retain or None)
        self._retain = retain
        self._closed = False
        self.published = 0

    def subscribe(self, maxsize: int | None = None) -> Subscription:
        """A new subscription that sees records published from now on."""
        return self.subscribe_since(None, maxsize)[0]

    def subscribe_since(
        self, since: float | None, maxsize: int | None = None
    ) -> tuple[Subscription, list[KpiRecord]]:
        """A new subscription and the retained records recorded at or after ``since``
        (none when ``since`` is None); raises TooManySubscribers or HubClosed."""
        sub = Subscription(self, maxsize or self.default_queue_size)
        with self._lock:
            if self._closed:
                raise HubClosed("the KPI hub is closed")
            if self.max_subscribers is not None and len(self._subs) >= self.max_subscribers:
                raise TooManySubscribers(len(self._subs), self.max_subscribers)
            self._subs.append(sub)
            backlog = [] if since is None else [r for r in self._retained if r.recorded_at >= since]
        return sub, backlog

    def close(self) -> None:
        """Closes every subscription (their readers wake) and refuses new ones."""
        with self._lock:
            self._closed = True
            subs = list(self._subs)
        for sub in subs:
            sub.close()

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, record: KpiRecord) -> int:
        """Retains ``record`` and offers it to every subscriber; returns how many accepted it."""
        with self._lock:  # held across the offers: see the module's note on ``since``
            if self._retain:
                self._retained.append(record)
            self.published += 1
            offers = [s._offer(record) for s in self._subs]
        if self._on_publish is not None:
            self._on_publish()
        drops = offers.count(False)
        if drops and self._on_drop is not None:
            self._on_drop(drops)
        return offers.count(True)

    def subscriber_count(self) -> int:
        """Current number of subscribers."""
        with self._lock:
            return len(self._subs)

    def drop_counts(self) -> list[int]:
        """Per-subscriber drop counters, in subscription order."""
        with self._lock:
            return [s.dropped for s in self._subs]
