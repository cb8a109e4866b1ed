"""The shared gRPC service framework every Chimera layer builds its service on.

A layer service (validation from the contract's ``(chimera.v1.rules)``,
deadlines, error mapping, JSON access log, metrics, health and reflection all
come with ``ChimeraServer``)::

    from chimera.framework import ChimeraServer, MetricsRegistry, ServerConfig, ServiceRegistration, serve

    registry = MetricsRegistry()
    tasks = registry.counter("layer4_tasks_total", "Tasks by final status.", ("status",))
    servicer = ExecutionServicer(tasks)
    server = ChimeraServer(
        ServerConfig.from_env("LAYER4_", base=ServerConfig(port=50054)),
        [
            ServiceRegistration(
                execution_pb2_grpc.add_ExecutionServiceServicer_to_server,
                servicer,
                "chimera.v1.ExecutionService",
            )
        ],
        metrics=registry,
        on_stop=StopHooks(before_drain=[servicer.end_streams], after_drain=[servicer.close]),
    )
    raise SystemExit(serve(server))

Handlers raise ``NotFound(...)``, ``FailedPrecondition(...)``, ``InvalidArgument(field, rule)``,
``ResourceExhausted(...)``, ``Unavailable(...)`` or ``Aborted(...)``; anything else becomes
INTERNAL with a request id.

A caller::

    with ChimeraClient(ClientConfig(idempotent_methods=("chimera.v1.ExecutionService/GetTask",))) as client:
        stub = client.stub(execution_pb2_grpc.ExecutionServiceStub, "127.0.0.1:50054")
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
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServiceError,
    Unavailable,
    UpstreamError,
)
from chimera.framework.metrics import Counter, Gauge, Histogram, MetricsRegistry
from chimera.framework.server import ChimeraServer, ServiceRegistration, StopHooks, serve
from chimera.framework.validation import Validator, Violation

__all__ = [
    "MIB",
    "Aborted",
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
    "StopHooks",
    "Unavailable",
    "UpstreamError",
    "Validator",
    "Violation",
    "serve",
]
