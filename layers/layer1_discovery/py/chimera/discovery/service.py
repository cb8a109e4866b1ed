"""DiscoveryService: host probes, window statistics and threshold alerts.

* ``Collect`` runs the requested probes once (raw measurements only: a
  window of one sample says nothing).
* ``StreamObservations`` runs them every ``interval_ms``; each stream keeps
  its own windows, so its batches carry ``<metric>.window.<stat>`` points for
  the configured window metrics, computed by the Rust core.
* A background collection (every ``collection_interval_ms`` of the config,
  all probes, its own windows) evaluates the configured thresholds and keeps
  the alerts they raise for ``GetAlerts``.
* ``EvaluateThresholds`` applies thresholds (the request's, else the
  configured ones) to a batch (the request's, else a fresh ``Collect`` of all
  probes) without recording anything.

Threshold semantics (strict comparisons, one alert per observation and
direction: the most severe crossed rung) are the Rust core's.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence

import grpc
from google.protobuf import timestamp_pb2

from chimera.discovery.alerts import AlertLog
from chimera.discovery.config import DiscoveryConfig
from chimera.discovery.core import DiscoveryCore, Rule
from chimera.discovery.probes import ALL_PROBES, HostProber
from chimera.discovery.windows import WindowTracker
from chimera.framework import MetricsRegistry
from chimera.v1 import common_pb2, discovery_pb2, discovery_pb2_grpc

__all__ = ["BackgroundCollector", "Discovery", "DiscoveryServicer"]

SERVICE_NAME = "chimera.v1.DiscoveryService"
DEFAULT_ALERT_LIMIT = 100
_log = logging.getLogger("chimera.discovery")


class Discovery:
    """Collection and evaluation, shared by the RPCs and the background loop."""

    def __init__(
        self,
        config: DiscoveryConfig,
        core: DiscoveryCore,
        prober: HostProber | None = None,
        metrics: MetricsRegistry | None = None,
    ) -> None:
        self.config = config
        self.core = core
        self.prober = prober or HostProber(config.toolchains, config.top_processes)
        self.source = f"{socket.gethostname()}/chimera-discovery/{os.getpid()}"
        registry = metrics or MetricsRegistry()
        self._rounds = registry.counter(
            "discovery_collections_total", "Collection rounds by trigger.", ("trigger",)
        )
        self._alerts = registry.counter(
            "discovery_alerts_total", "Alerts raised by the background collection.", ("severity",)
        )

    def new_tracker(self) -> WindowTracker:
        c = self.config
        return WindowTracker(self.core, c.window_metrics, c.window_size, c.ewma_alpha)

    def collect(
        self,
        probes: Sequence[int],
        *,
        trigger: str,
        tracker: WindowTracker | None = None,
        sequence: int = 1,
    ) -> discovery_pb2.DataBatch:
        """One round: the probes' points, plus the tracker's derived points."""
        collected_at = timestamp_pb2.Timestamp()
        collected_at.GetCurrentTime()
        started = time.perf_counter()
        points = self.prober.collect(probes or ALL_PROBES)
        if tracker is not None:
            points += tracker.observe(points)
        self._rounds.labels(trigger=trigger).inc()
        return discovery_pb2.DataBatch(
            source=self.source,
            collected_at=collected_at,
            points=points,
            sequence=sequence,
            collection_time_ms=(time.perf_counter() - started) * 1000.0,
        )

    def evaluate(
        self, batch: discovery_pb2.DataBatch, rules: Sequence[Rule]
    ) -> list[discovery_pb2.Alert]:
        """Alerts ``rules`` raise on ``batch``, most severe first."""
        observations = [(p.name, p.value, p.unit) for p in batch.points]
        alerts = []
        for a in self.core.evaluate(observations, rules):
            p, rule = batch.points[a.observation], rules[a.threshold]
            alerts.append(
                discovery_pb2.Alert(
                    severity=a.severity,
                    metric=p.name,
                    value=p.value,
                    threshold=rule.value,
                    message=a.message,
                    raised_at=batch.collected_at,
                    labels=dict(p.labels),
                    comparison=a.comparison,
                )
            )
        return alerts

    def record(self, alerts: Sequence[discovery_pb2.Alert]) -> None:
        for a in alerts:
            self._alerts.labels(severity=common_pb2.Severity.Name(a.severity)).inc()


class BackgroundCollector:
    """Collects all probes periodically and records the alerts they raise."""

    def __init__(self, discovery: Discovery, log: AlertLog) -> None:
        self._discovery = discovery
        self._log = log
        self._tracker = discovery.new_tracker()
        self._stop = threading.Event()
        self._rounds = 0
        self._thread: threading.Thread | None = None

    @property
    def rounds(self) -> int:
        return self._rounds

    def start(self) -> BackgroundCollector:
        interval_ms = self._discovery.config.collection_interval_ms
        if interval_ms > 0 and self._thread is None:
            self._thread = threading.Thread(
                target=self._run,
                args=(interval_ms / 1000.0,),
                name="discovery-collector",
                daemon=True,
            )
            self._thread.start()
        return self

    def run_once(self) -> list[discovery_pb2.Alert]:
        self._rounds += 1
        batch = self._discovery.collect(
            ALL_PROBES, trigger="background", tracker=self._tracker, sequence=self._rounds
        )
        alerts = self._discovery.evaluate(batch, self._discovery.config.thresholds)
        self._log.add(reversed(alerts))  # newest-first queries then list the most severe first
        self._discovery.record(alerts)
        return alerts

    def _run(self, interval: float) -> None:
        next_start = time.monotonic()
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # keep collecting; one bad round must not end alerting
                _log.exception("background collection failed")
            next_start += interval
            delay = next_start - time.monotonic()
            if delay < 0:
                next_start, delay = time.monotonic(), 0.0
            self._stop.wait(delay)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def _rules(thresholds: Sequence[discovery_pb2.Threshold]) -> list[Rule]:
    rules = []
    for t in thresholds:  # comparison and severity are checked by the contract's rules
        rules.append(Rule(t.metric, t.comparison, t.value, t.severity))
    return rules


class DiscoveryServicer(discovery_pb2_grpc.DiscoveryServiceServicer):
    """The gRPC face of :class:`Discovery`."""

    def __init__(self, discovery: Discovery, log: AlertLog) -> None:
        self._discovery = discovery
        self._log = log

    def Collect(
        self, request: discovery_pb2.CollectRequest, context: grpc.ServicerContext
    ) -> discovery_pb2.DataBatch:
        probes = list(request.probes)
        return self._discovery.collect(probes, trigger="collect")

    def StreamObservations(
        self, request: discovery_pb2.StreamObservationsRequest, context: grpc.ServicerContext
    ) -> Iterator[discovery_pb2.DataBatch]:
        probes = list(request.probes)
        interval = request.interval_ms / 1000.0
        tracker = self._discovery.new_tracker()
        stop = threading.Event()
        context.add_callback(stop.set)
        sequence = 0
        next_start = time.monotonic()
        while context.is_active() and not stop.is_set():
            sequence += 1
            yield self._discovery.collect(
                probes, trigger="stream", tracker=tracker, sequence=sequence
            )
            if request.max_batches and sequence >= request.max_batches:
                return
            next_start += interval
            delay = next_start - time.monotonic()
            if delay < 0:  # a slow round: start the next now rather than bunching up
                next_start, delay = time.monotonic(), 0.0
            if stop.wait(delay):
                return

    def GetAlerts(
        self, request: discovery_pb2.GetAlertsRequest, context: grpc.ServicerContext
    ) -> discovery_pb2.GetAlertsResponse:
        since = request.since.ToNanoseconds() if request.HasField("since") else None
        limit = request.limit or DEFAULT_ALERT_LIMIT
        alerts = self._log.query(request.min_severity, since, limit)
        return discovery_pb2.GetAlertsResponse(alerts=alerts)

    def EvaluateThresholds(
        self, request: discovery_pb2.EvaluateThresholdsRequest, context: grpc.ServicerContext
    ) -> discovery_pb2.EvaluateThresholdsResponse:
        rules = _rules(request.thresholds) if request.thresholds else list(
            self._discovery.config.thresholds
        )
        if request.HasField("batch"):
            batch = request.batch
        else:
            batch = self._discovery.collect(ALL_PROBES, trigger="evaluate")
        alerts = self._discovery.evaluate(batch, rules)
        return discovery_pb2.EvaluateThresholdsResponse(alerts=alerts, batch=batch)
