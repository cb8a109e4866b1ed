"""Rejects requests that break their contract's ``(chimera.v1.rules)`` before handlers run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf.message import Message

from chimera.framework.context import CallContext
from chimera.framework.interceptors.base import (
    Proceed,
    RpcInfo,
    RpcInterceptor,
    UndecodableRequest,
)
from chimera.framework.validation import Validator

__all__ = ["ValidationInterceptor"]


class ValidationInterceptor(RpcInterceptor):
    """Answers INVALID_ARGUMENT naming the first broken rule (``field 'x.y' must be >= 1 (got 0)``).

    Client-streamed requests are checked one by one as the handler reads them.
    """

    def __init__(self, validator: Validator) -> None:
        self._validator = validator

    def intercept_unary(
        self, request: Any, context: CallContext, info: RpcInfo, proceed: Proceed
    ) -> Any:
        return proceed(self._checked(request, context, info), context)

    def intercept_stream(
        self, request: Any, context: CallContext, info: RpcInfo, proceed: Proceed
    ) -> Iterator[Any]:
        return proceed(self._checked(request, context, info), context)

    def _checked(self, request: Any, context: CallContext, info: RpcInfo) -> Any:
        if info.request_streaming:
            return self._checked_each(request, context)
        self._check(request, context)
        return request

    def _checked_each(self, requests: Iterator[Message], context: CallContext) -> Iterator[Message]:
        for request in requests:
            self._check(request, context)
            yield request

    def _check(self, request: Message | UndecodableRequest, context: CallContext) -> None:
        if isinstance(request, UndecodableRequest):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"request is not a valid serialized message of the method's type ({request.error})",
            )
        violation = self._validator.first_violation(request)
        if violation is not None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(violation))
