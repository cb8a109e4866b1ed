"""Plumbing shared by the server interceptors.

``grpc.ServerInterceptor`` only hands out method handlers; to act on requests,
responses and outcomes an interceptor must wrap the handler's behaviour
function. ``RpcInterceptor`` does that once for all four RPC shapes and calls
``intercept_unary`` (unary response) or ``intercept_stream`` (streaming
response) with a ``CallContext``. Health and reflection (infrastructure, polled
often, with non-blocking handlers of their own) are passed through untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import grpc
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection

from chimera.framework.context import CallContext

__all__ = [
    "INFRASTRUCTURE_SERVICES",
    "UndecodableRequest",
    "ObservingInterceptor",
    "Outcome",
    "Proceed",
    "RpcInfo",
    "RpcInterceptor",
    "outcome_code",
]

INFRASTRUCTURE_SERVICES: frozenset[str] = frozenset(
    {health.SERVICE_NAME, reflection.SERVICE_NAME, "grpc.reflection.v1.ServerReflection"}
)

Proceed = Callable[[Any, CallContext], Any]


class RpcInfo(NamedTuple):
    """Static facts about the method being called."""

    method: str  # "/chimera.v1.ExecutionService/GetTask"
    request_streaming: bool
    response_streaming: bool

    @property
    def service(self) -> str:
        return self.method.strip("/").partition("/")[0]

    @property
    def name(self) -> str:
        return self.method.rpartition("/")[2]

    @property
    def grpc_type(self) -> str:
        if self.request_streaming:
            return "bidi_stream" if self.response_streaming else "client_stream"
        return "server_stream" if self.response_streaming else "unary"


class UndecodableRequest(NamedTuple):
    """Stands in for a request whose bytes are not a message of the method's type.

    gRPC would answer such a request INTERNAL ("Exception deserializing
    request!") before any interceptor runs; the interceptors' deserializer
    hands this on instead, and validation answers INVALID_ARGUMENT.
    """

    error: str


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None or getattr(deserializer, "_chimera_tolerant", False):
        return deserializer

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # protobuf's DecodeError, or anything a parser raises
            return UndecodableRequest(f"{type(exc).__name__}: {exc}")

    deserialize._chimera_tolerant = True  # type: ignore[attr-defined]
    return deserialize


class RpcInterceptor(grpc.ServerInterceptor):
    """Base class; override ``intercept_unary`` and/or ``intercept_stream``."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        info = RpcInfo(
            handler_call_details.method, handler.request_streaming, handler.response_streaming
        )
        if info.service in INFRASTRUCTURE_SERVICES:
            return handler
        behavior_name, factory = _SHAPES[info.request_streaming, info.response_streaming]
        behavior = getattr(handler, behavior_name)
        intercept = self.intercept_stream if info.response_streaming else self.intercept_unary

        def intercepted(request: Any, context: grpc.ServicerContext) -> Any:
            return intercept(request, CallContext.wrap(context, info.method), info, behavior)

        return factory(
            intercepted,
            request_deserializer=_tolerant(handler.request_deserializer),
            response_serializer=handler.response_serializer,
        )

    def intercept_unary(
        self, request: Any, context: CallContext, info: RpcInfo, proceed: Proceed
    ) -> Any:
        """Handles an RPC with a single response; ``request`` is an iterator if client-streaming."""
        return proceed(request, context)

    def intercept_stream(
        self, request: Any, context: CallContext, info: RpcInfo, proceed: Proceed
    ) -> Iterator[Any]:
        """Handles an RPC with a streaming response; returns the response iterator."""
        return proceed(request, context)


class Outcome(NamedTuple):
    """How an RPC ended, as ``ObservingInterceptor.on_complete`` reports it."""

    code: grpc.StatusCode
    seconds: float
    responses: int  # messages sent: 0 or 1 for a unary response


class ObservingInterceptor(RpcInterceptor):
    """Calls ``on_complete`` once per RPC with its final code and duration.

    For streaming responses that happens when the stream ends (exhausted,
    failed, or closed because the client went away).
    """

    def on_start(self, context: CallContext, info: RpcInfo) -> None:
        """Hook: the RPC is about to run."""

    def on_complete(self, context: CallContext, info: RpcInfo, outcome: Outcome) -> None:
        raise NotImplementedError

    def intercept_unary(
        self, request: Any, context: CallContext, info: RpcInfo, proceed: Proceed
    ) -> Any:
        self.on_start(context, info)
        start = time.perf_counter()
        try:
            response = proceed(request, context)
        except BaseException as exc:
            self._complete(context, info, start, exc, 0)
            raise
        self._complete(context, info, start, None, 1)
        return response

    def intercept_stream(
        self, request: Any, context: CallContext, info: RpcInfo, proceed: Proceed
    ) -> Iterator[Any]:
        self.on_start(context, info)
        start = time.perf_counter()
        sent = 0
        try:
            for response in proceed(request, context):
                yield response
                sent += 1
        except BaseException as exc:
            self._complete(context, info, start, exc, sent)
            raise
        self._complete(context, info, start, None, sent)

    def _complete(
        self,
        context: CallContext,
        info: RpcInfo,
        start: float,
        error: BaseException | None,
        responses: int,
    ) -> None:
        seconds = time.perf_counter() - start
        self.on_complete(context, info, Outcome(outcome_code(context, error), seconds, responses))


def outcome_code(context: grpc.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The status the client will see, as far as the server can tell."""
    if isinstance(error, GeneratorExit):
        return grpc.StatusCode.CANCELLED  # the stream was dropped: client cancelled or left
    code = _chosen_code(context)
    if code is not None:
        return code
    if error is not None:
        return grpc.StatusCode.UNKNOWN
    return grpc.StatusCode.OK if context.is_active() else grpc.StatusCode.CANCELLED


def is_abort(error: BaseException, context: grpc.ServicerContext) -> bool:
    """True for the exception ``context.abort`` raises (a bare ``Exception()`` after setting a code)."""
    return _chosen_code(context) is not None and type(error) is Exception and not error.args


def _chosen_code(context: grpc.ServicerContext) -> grpc.StatusCode | None:
    """The code the handler set (``set_code`` or ``abort``), unless none or OK."""
    code = context.code()
    return None if code == grpc.StatusCode.OK else code


# (request_streaming, response_streaming) -> the handler's behaviour attribute
# and the factory that builds a handler of the same shape.
_SHAPES: dict[tuple[bool, bool], tuple[str, Callable[..., grpc.RpcMethodHandler]]] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}
