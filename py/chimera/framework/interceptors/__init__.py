"""Server interceptors: validation, deadlines, error mapping, access log, metrics.

``default_chain`` gives them in the order the framework installs them,
outermost first: the access log and metrics see the final status of every
call, errors are mapped before they are observed, and validation runs last,
right before the handler.
"""

from __future__ import annotations

import logging

import grpc

from chimera.framework.interceptors.access_log import AccessLogInterceptor
from chimera.framework.interceptors.base import (
    INFRASTRUCTURE_SERVICES,
    ObservingInterceptor,
    Outcome,
    RpcInfo,
    RpcInterceptor,
)
from chimera.framework.interceptors.deadline import DeadlineInterceptor
from chimera.framework.interceptors.error_mapping import ErrorMappingInterceptor
from chimera.framework.interceptors.rpc_metrics import MetricsInterceptor
from chimera.framework.interceptors.validation import ValidationInterceptor
from chimera.framework.metrics import MetricsRegistry
from chimera.framework.validation import Validator

__all__ = [
    "INFRASTRUCTURE_SERVICES",
    "AccessLogInterceptor",
    "DeadlineInterceptor",
    "ErrorMappingInterceptor",
    "MetricsInterceptor",
    "ObservingInterceptor",
    "Outcome",
    "RpcInfo",
    "RpcInterceptor",
    "ValidationInterceptor",
    "default_chain",
]


def default_chain(
    *,
    validator: Validator,
    registry: MetricsRegistry,
    logger: logging.Logger,
    default_deadline_seconds: float | None,
    default_stream_deadline_seconds: float | None,
) -> list[grpc.ServerInterceptor]:
    return [
        AccessLogInterceptor(logger),
        MetricsInterceptor(registry),
        ErrorMappingInterceptor(logger),
        DeadlineInterceptor(default_deadline_seconds, default_stream_deadline_seconds),
        ValidationInterceptor(validator),
    ]
