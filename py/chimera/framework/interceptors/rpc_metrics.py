"""Counts RPCs by method and code and times them, into a MetricsRegistry.

Names and labels follow go-grpc-prometheus, so existing dashboards fit:
``grpc_server_started_total``, ``grpc_server_handled_total`` (with
``grpc_code``) and the ``grpc_server_handling_seconds`` histogram.
Streaming RPCs are counted when their stream ends.
"""

from __future__ import annotations

from collections.abc import Sequence

from chimera.framework.context import CallContext
from chimera.framework.interceptors.base import ObservingInterceptor, Outcome, RpcInfo
from chimera.framework.metrics import DEFAULT_BUCKETS, MetricsRegistry

__all__ = ["MetricsInterceptor"]

_LABELS = ("grpc_type", "grpc_service", "grpc_method")


class MetricsInterceptor(ObservingInterceptor):
    def __init__(
        self,
        registry: MetricsRegistry,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        self._started = registry.counter(
            "grpc_server_started_total", "RPCs started on the server.", _LABELS
        )
        self._handled = registry.counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by status code.",
            (*_LABELS, "grpc_code"),
        )
        self._seconds = registry.histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its status (end of stream for streams).",
            _LABELS,
            buckets,
        )

    def on_start(self, context: CallContext, info: RpcInfo) -> None:
        self._started.labels(**_labels(info)).inc()

    def on_complete(self, context: CallContext, info: RpcInfo, outcome: Outcome) -> None:
        labels = _labels(info)
        self._handled.labels(**labels, grpc_code=outcome.code.name).inc()
        self._seconds.labels(**labels).observe(outcome.seconds)


def _labels(info: RpcInfo) -> dict[str, str]:
    return {"grpc_type": info.grpc_type, "grpc_service": info.service, "grpc_method": info.name}
