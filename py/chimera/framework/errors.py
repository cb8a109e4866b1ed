"""Error types a handler raises to answer with a specific gRPC status.

Handlers raise these instead of calling ``context.abort`` so that service code
stays free of transport details and so that every layer words its errors the
same way. The error-mapping interceptor turns them into statuses; anything else
a handler raises becomes INTERNAL with a request id, never a traceback.
"""

from __future__ import annotations

from typing import ClassVar, NoReturn

import grpc

__all__ = [
    "Aborted",
    "FailedPrecondition",
    "InvalidArgument",
    "NotFound",
    "ResourceExhausted",
    "ServiceError",
    "Unavailable",
    "UpstreamError",
    "abort_with",
]


class ServiceError(Exception):
    """Base class: an expected failure with a status code and a client-safe message."""

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(ServiceError):
    """The request breaks a rule; ``field`` is its path (``task.priority``, ``kpis[2].latency_ms``)."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"field '{field}' {rule}")
        self.field = field
        self.rule = rule


class FailedPrecondition(ServiceError):
    """The system is not in a state that allows the operation (e.g. plan not validated)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class NotFound(ServiceError):
    """The named entity does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class ResourceExhausted(ServiceError):
    """A bounded resource (queue, pool, budget) is full."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(ServiceError):
    """A service this one depends on cannot be reached now; the caller may retry later."""

    code = grpc.StatusCode.UNAVAILABLE


class Aborted(ServiceError):
    """The operation lost a race with a concurrent one (e.g. a version changed); retry from the start."""

    code = grpc.StatusCode.ABORTED


class UpstreamError(ServiceError):
    """Another layer refused or failed a call this handler made; the caller gets that
    layer's status (so an INVALID_ARGUMENT naming its field, or UNAVAILABLE, passes on)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]

    @classmethod
    def from_rpc(cls, exc: grpc.RpcError, call: str) -> UpstreamError:
        """``call`` says which call failed ("resources CancelJob"). A failed call and the
        client's open breaker (CircuitOpenError) carry a status; any other RpcError
        counts as UNAVAILABLE."""
        if callable(getattr(exc, "code", None)) and callable(getattr(exc, "details", None)):
            code, details = exc.code(), exc.details()
        else:
            code, details = grpc.StatusCode.UNAVAILABLE, str(exc)
        return cls(code, f"{call}: {code.name}: {details}")


def abort_with(context: grpc.ServicerContext, error: ServiceError) -> NoReturn:
    """Ends the RPC with the error's code and message (``context.abort`` raises)."""
    context.abort(error.code, error.message)
    raise AssertionError("grpc.ServicerContext.abort returned")  # pragma: no cover
