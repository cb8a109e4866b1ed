"""The shared gRPC service framework every Chimera layer builds its service on.

A layer service::

    from chimera.framework import ChimeraServer, ServerConfig, ServiceRegistration, serve
    from chimera.framework.errors import NotFound

    registry = MetricsRegistry()
    tasks = registry.counter("layer4_tasks_total", "Tasks by final status.", ("status",))
    serve(
        ServerConfig.from_env("LAYER4_", base=ServerConfig(port=50054)),
        ServiceRegistration(add_ExecutionServiceServicer_to_server, servicer, "chimera.v1.ExecutionService"),
        metrics=registry,
    )

and a caller::

    with ChimeraClient(ClientConfig(idempotent_methods=("chimera.v1.ExecutionService/GetTask",))) as client:
        stub = client.stub(ExecutionServiceStub, "127.0.0.1:50054")
"""

from chimera.framework.breaker import (
    BreakerState,
    BreakerStats,
    CircuitBreaker,
    CircuitOpenError,
)
from chimera.framework.client import ChimeraClient, ClientConfig, RetryPolicy
from chimera.framework.config import MIB, ServerConfig
from chimera.framework.context import REQUEST_ID_KEY, CallContext
from chimera.framework.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServiceError,
)
from chimera.framework.metrics import Counter, Gauge, Histogram, MetricsRegistry
from chimera.framework.server import ChimeraServer, ServiceRegistration, serve
from chimera.framework.validation import Validator, Violation

__all__ = [
    "MIB",
    "REQUEST_ID_KEY",
    "BreakerState",
    "BreakerStats",
    "CallContext",
    "ChimeraClient",
    "ChimeraServer",
    "CircuitBreaker",
    "CircuitOpenError",
    "ClientConfig",
    "Counter",
    "FailedPrecondition",
    "Gauge",
    "Histogram",
    "InvalidArgument",
    "MetricsRegistry",
    "NotFound",
    "ResourceExhausted",
    "RetryPolicy",
    "ServerConfig",
    "ServiceError",
    "ServiceRegistration",
    "Validator",
    "Violation",
    "serve",
]
