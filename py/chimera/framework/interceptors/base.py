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
from collections.abc import Callable, Collection, Iterator
from typing import Any, NamedTuple

import grpc
from grpc_health.v1 import health
from grpc_reflection.v1alpha import reflection

from chimera.framework.context import CallContext

__all__ = [
    "INFRASTRUCTURE_SERVICES",
    "ObservingInterceptor",
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


class RpcInterceptor(grpc.ServerInterceptor):
    """Base class; override ``intercept_unary`` and/or ``intercept_stream``."""

    def __init__(self, skip_services: Collection[str] = INFRASTRUCTURE_SERVICES) -> None:
        self._skip = frozenset(skip_services)

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
        if info.service in self._skip:
            return handler
        return _rebuild(handler, info, self._wrap(info, _behavior_of(handler)))

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

    def _wrap(self, info: RpcInfo, behavior: Proceed) -> Proceed:
        if info.response_streaming:

            def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                call = CallContext.wrap(context, info.method)
                return self.intercept_stream(request, call, info, behavior)

            return stream

        def unary(request: Any, context: grpc.ServicerContext) -> Any:
            call = CallContext.wrap(context, info.method)
            return self.intercept_unary(request, call, info, behavior)

        return unary


class ObservingInterceptor(RpcInterceptor):
    """Calls ``on_complete`` once per RPC with its final code and duration.

    For streaming responses that happens when the stream ends (exhausted,
    failed, or closed because the client went away).
    """

    def on_start(self, context: CallContext, info: RpcInfo) -> None:
        """Hook: the RPC is about to run."""

    def on_complete(
        self,
        context: CallContext,
        info: RpcInfo,
        code: grpc.StatusCode,
        seconds: float,
        responses: int,
    ) -> None:
        raise NotImplementedError

    def intercept_unary(
        self, request: Any, context: CallContext, info: RpcInfo, proceed: Proceed
    ) -> Any:
        self.on_start(context, info)
        start = time.perf_counter()
        try:
            response = proceed(request, context)
        except BaseException as exc:
            self.on_complete(context, info, outcome_code(context, exc), _since(start), 0)
            raise
        self.on_complete(context, info, outcome_code(context, None), _since(start), 1)
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
            self.on_complete(context, info, outcome_code(context, exc), _since(start), sent)
            raise
        self.on_complete(context, info, outcome_code(context, None), _since(start), sent)


def outcome_code(context: grpc.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The status the client will see, as far as the server can tell."""
    if isinstance(error, GeneratorExit):
        return grpc.StatusCode.CANCELLED  # the stream was dropped: client cancelled or left
    code = context.code()
    chosen = code is not None and code != grpc.StatusCode.OK
    if error is not None:
        return code if chosen else grpc.StatusCode.UNKNOWN
    if chosen:
        return code
    return grpc.StatusCode.OK if context.is_active() else grpc.StatusCode.CANCELLED


def is_abort(error: BaseException, context: grpc.ServicerContext) -> bool:
    """True for the exception ``context.abort`` raises (a bare ``Exception()`` after setting a code)."""
    code = context.code()
    chosen = code is not None and code != grpc.StatusCode.OK
    return chosen and type(error) is Exception and not error.args


def _since(start: float) -> float:
    return time.perf_counter() - start


def _behavior_of(handler: grpc.RpcMethodHandler) -> Proceed:
    if handler.request_streaming and handler.response_streaming:
        return handler.stream_stream
    if handler.request_streaming:
        return handler.stream_unary
    if handler.response_streaming:
        return handler.unary_stream
    return handler.unary_unary


def _rebuild(
    handler: grpc.RpcMethodHandler, info: RpcInfo, behavior: Proceed
) -> grpc.RpcMethodHandler:
    if info.request_streaming and info.response_streaming:
        factory = grpc.stream_stream_rpc_method_handler
    elif info.request_streaming:
        factory = grpc.stream_unary_rpc_method_handler
    elif info.response_streaming:
        factory = grpc.unary_stream_rpc_method_handler
    else:
        factory = grpc.unary_unary_rpc_method_handler
    return factory(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
