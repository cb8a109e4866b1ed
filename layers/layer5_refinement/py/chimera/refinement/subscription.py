"""The long-lived subscription to layer 4's ``ExecutionService.StreamKpis``.

A background thread keeps one stream open and feeds every report into a
sink (the service's :class:`~chimera.refinement.buffers.KpiBuffers`). When
the stream ends or fails (layer 4 restarting, the network dropping) it waits
with capped exponential backoff plus jitter and subscribes again, asking for
retained reports ``since`` the last one it saw (the first time: since it
started), so a restart of layer 4
within its retention loses nothing; reports at exactly that instant that
were already delivered are dropped as duplicates.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from chimera.framework import MetricsRegistry
from chimera.v1 import common_pb2, execution_pb2, execution_pb2_grpc

__all__ = ["Backoff", "KpiSubscription"]

_log = logging.getLogger("chimera.refinement.subscription")

Sink = Callable[[Iterable[common_pb2.KpiReport]], object]


@dataclass(frozen=True)
class Backoff:
    """Delay before reconnect attempt ``n`` (0-based): ``min(cap, base * factor**n)``,
    scaled by a uniform jitter in [1 - jitter, 1]."""

    base_s: float = 0.1
    factor: float = 2.0
    cap_s: float = 5.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> float:
        raw = min(self.cap_s, self.base_s * self.factor ** min(attempt, 64))
        return raw * (1.0 - self.jitter * rng.random())


class KpiSubscription:
    """Subscribes to StreamKpis on ``target`` until :meth:`stop`; a context manager."""

    def __init__(
        self,
        target: str,
        sink: Sink,
        *,
        module_name: str = "",
        backoff: Backoff = Backoff(),
        metrics: MetricsRegistry | None = None,
        seed: int | None = None,
    ) -> None:
        self._target = target
        self._sink = sink
        self._module_name = module_name
        self._backoff = backoff
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._lock = threading.Lock()
        self._call: grpc.Future | None = None
        self._since: Timestamp | None = None
        self._seen_at_since: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="kpi-subscription", daemon=True)
        registry = metrics or MetricsRegistry()
        self._received = registry.counter(
            "layer5_kpi_stream_reports_total", "Reports received from StreamKpis."
        )
        self._reconnects = registry.counter(
            "layer5_kpi_stream_reconnects_total", "StreamKpis subscriptions opened after a failure."
        )
        self._up = registry.gauge("layer5_kpi_stream_connected", "1 while StreamKpis is open.")

    def start(self) -> KpiSubscription:
        # Even the first subscription asks for reports since now: the server
        # may subscribe a moment after this call, and its retained reports
        # cover that gap.
        self._since = Timestamp()
        self._since.GetCurrentTime()
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()
        self._thread.join(timeout)

    def wait_connected(self, timeout: float) -> bool:
        """True once a stream call is open (layer 4's ``layer4_kpi_streams`` gauge
        says when the server has subscribed it)."""
        return self._connected.wait(timeout)

    def __enter__(self) -> KpiSubscription:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _request(self) -> execution_pb2.StreamKpisRequest:
        request = execution_pb2.StreamKpisRequest(module_name=self._module_name)
        if self._since is not None:
            request.since.CopyFrom(self._since)
        return request

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                with grpc.insecure_channel(self._target) as channel:
                    self._consume(execution_pb2_grpc.ExecutionServiceStub(channel))
                failures = 0  # the server ended the stream cleanly (e.g. shutting down)
            except grpc.RpcError as exc:
                if self._stopping.is_set():
                    break
                _log.info("StreamKpis from %s failed: %s", self._target, exc.code())
            finally:
                self._up.set(0)
                self._connected.clear()
            if self._stopping.wait(self._backoff.delay(failures, self._rng)):
                break
            failures += 1
            self._reconnects.inc()

    def _consume(self, stub: execution_pb2_grpc.ExecutionServiceStub) -> None:
        call = stub.StreamKpis(self._request(), wait_for_ready=False)
        with self._lock:
            self._call = call
        if self._stopping.is_set():
            call.cancel()
        self._up.set(1)
        self._connected.set()
        for report in call:
            if self._duplicate(report):
                continue
            self._received.inc()
            self._sink([report])

    def _duplicate(self, report: common_pb2.KpiReport) -> bool:
        """Tracks the latest ``recorded_at``; True for a report already delivered."""
        key = f"{report.task_id}/{report.metrics.get('attempt', 0.0)}/{report.module_version}"
        at = report.recorded_at
        since = self._since
        if since is None or (at.seconds, at.nanos) > (since.seconds, since.nanos):
            self._since = Timestamp(seconds=at.seconds, nanos=at.nanos)
            self._seen_at_since = {key}
            return False
        if (at.seconds, at.nanos) == (since.seconds, since.nanos):
            if key in self._seen_at_since:
                return True
            self._seen_at_since.add(key)
            return False
        return False  # older than the newest seen: out of order, not a replay
