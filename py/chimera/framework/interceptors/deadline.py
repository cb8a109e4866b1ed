"""Gives every RPC a deadline and answers DEADLINE_EXCEEDED when it is overrun.

* A client deadline is honoured by gRPC itself (the client stops waiting); a
  call that arrives already past it (queued behind busy workers) is refused
  without running the handler.
* A call without a client deadline gets the server default, which handlers see
  through ``context.time_remaining()`` like a client deadline.
* Python cannot pre-empt a running handler thread, so enforcement is
  cooperative and checked, not forced: long handlers should poll
  ``context.time_remaining()``; when a unary handler returns after the
  deadline its reply is discarded and DEADLINE_EXCEEDED sent instead, and a
  streaming handler is stopped at its next message once the deadline passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc

from chimera.framework.context import CallContext
from chimera.framework.interceptors.base import Proceed, RpcInfo, RpcInterceptor

__all__ = ["DeadlineInterceptor"]


class DeadlineInterceptor(RpcInterceptor):
    def __init__(
        self, default_seconds: float | None, stream_default_seconds: float | None = None
    ) -> None:
        self._default = default_seconds
        self._stream_default = stream_default_seconds

    def intercept_unary(
        self, request: Any, context: CallContext, info: RpcInfo, proceed: Proceed
    ) -> Any:
        self._enter(context, self._default)
        response = proceed(request, context)
        if context.deadline_passed():
            _expire(context, self._default)
        return response

    def intercept_stream(
        self, request: Any, context: CallContext, info: RpcInfo, proceed: Proceed
    ) -> Iterator[Any]:
        self._enter(context, self._stream_default)
        for response in proceed(request, context):
            if context.deadline_passed():
                _expire(context, self._stream_default)
            yield response

    @staticmethod
    def _enter(context: CallContext, default: float | None) -> None:
        if default is not None:
            context.apply_default_deadline(default)
        if context.deadline_passed():
            context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded before the call started"
            )


def _expire(context: CallContext, default: float | None) -> None:
    if context.has_server_deadline:
        context.abort(
            grpc.StatusCode.DEADLINE_EXCEEDED, f"server default deadline of {default:g} s exceeded"
        )
    context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
