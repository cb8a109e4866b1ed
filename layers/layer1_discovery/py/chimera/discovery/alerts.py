"""The bounded log of alerts raised by the background collection."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from chimera.v1 import discovery_pb2

__all__ = ["AlertLog"]


class AlertLog:
    """Keeps the newest ``capacity`` alerts; thread-safe."""

    def __init__(self, capacity: int) -> None:
        self._alerts: deque[discovery_pb2.Alert] = deque(maxlen=capacity)
        self._lock = threading.Lock()

    def add(self, alerts: Iterable[discovery_pb2.Alert]) -> None:
        with self._lock:
            self._alerts.extend(alerts)

    def __len__(self) -> int:
        with self._lock:
            return len(self._alerts)

    def query(
        self, min_severity: int = 0, since_ns: int | None = None, limit: int = 100
    ) -> list[discovery_pb2.Alert]:
        """Alerts at or above ``min_severity`` raised at or after ``since_ns``, newest first."""
        with self._lock:
            items = list(self._alerts)
        out: list[discovery_pb2.Alert] = []
        for alert in reversed(items):
            if alert.severity < min_severity:
                continue
            if since_ns is not None and alert.raised_at.ToNanoseconds() < since_ns:
                continue
            out.append(alert)
            if len(out) >= limit:
                break
        return out
