"""Turns exceptions from handlers into statuses, so no traceback reaches a client.

``ServiceError`` subclasses (InvalidArgument, NotFound, ...) become their own
code and message. A status already chosen with ``context.abort`` passes
through. Anything else is a bug: it is logged with its traceback and the
request id, and the client gets INTERNAL with only that request id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, NoReturn

import grpc

from chimera.framework.context import CallContext
from chimera.framework.errors import ServiceError, abort_with
from chimera.framework.interceptors.base import Proceed, RpcInfo, RpcInterceptor, is_abort

__all__ = ["ErrorMappingInterceptor"]


class ErrorMappingInterceptor(RpcInterceptor):
    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger

    def intercept_unary(
        self, request: Any, context: CallContext, info: RpcInfo, proceed: Proceed
    ) -> Any:
        try:
            return proceed(request, context)
        except Exception as exc:
            self._fail(exc, context, info)

    def intercept_stream(
        self, request: Any, context: CallContext, info: RpcInfo, proceed: Proceed
    ) -> Iterator[Any]:
        try:
            yield from proceed(request, context)
        except Exception as exc:
            self._fail(exc, context, info)

    def _fail(self, exc: Exception, context: CallContext, info: RpcInfo) -> NoReturn:
        if isinstance(exc, ServiceError):
            abort_with(context, exc)
        if is_abort(exc, context):
            raise exc
        self._log.error(
            "unhandled exception in %s (request_id=%s)",
            info.method,
            context.request_id,
            exc_info=exc,
        )
        context.abort(grpc.StatusCode.INTERNAL, f"internal error (request_id={context.request_id})")
        raise AssertionError("abort returned")  # pragma: no cover
