"""Stored verdicts, looked up by id (layer 4 checks them before deploying)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from chimera.v1 import validation_pb2

__all__ = ["VerdictStore"]


class VerdictStore:
    """The newest ``retention`` verdicts, each valid for ``ttl_seconds``; thread-safe."""

    def __init__(
        self, retention: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._retention = retention
        self._ttl = ttl_seconds
        self._clock = clock
        self._items: OrderedDict[
            str, tuple[float, validation_pb2.ValidationResult, dict[str, str]]
        ] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, result: validation_pb2.ValidationResult, context: Mapping[str, str]) -> None:
        with self._lock:
            self._items[result.verdict_id] = (self._clock(), result, dict(context))
            while len(self._items) > self._retention:
                self._items.popitem(last=False)

    def get(self, verdict_id: str) -> validation_pb2.ValidationResult | None:
        """The verdict, or None when unknown, evicted or older than the TTL."""
        with self._lock:
            item = self._items.get(verdict_id)
            if item is None:
                return None
            stored_at, result, _ = item
            if self._clock() - stored_at > self._ttl:
                del self._items[verdict_id]
                return None
            return result

    def context(self, verdict_id: str) -> dict[str, str] | None:
        with self._lock:
            item = self._items.get(verdict_id)
            return None if item is None else dict(item[2])

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
