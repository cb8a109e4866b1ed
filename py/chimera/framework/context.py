"""Per-call state shared by the server interceptors and handed to handlers.

gRPC gives each interceptor the same ``ServicerContext`` but no place to keep
per-call facts. ``CallContext`` wraps it once (whichever interceptor sees the
call first) and carries the request id and the effective deadline, so the
logging, error and deadline interceptors agree on both, and handlers see the
server's default deadline through the ordinary ``context.time_remaining()``.
Everything not overridden here is delegated to the wrapped context.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import grpc

__all__ = ["REQUEST_ID_KEY", "CallContext"]

REQUEST_ID_KEY = "x-request-id"

# grpc reports "no deadline" as ~2**63 seconds remaining; anything beyond a
# year is treated as none.
_NO_DEADLINE_SECONDS = 365 * 24 * 3600.0
_MAX_REQUEST_ID_CHARS = 128

Metadata = Sequence[tuple[str, str | bytes]]


class CallContext:
    """A ``grpc.ServicerContext`` plus request id and effective deadline."""

    def __init__(self, inner: grpc.ServicerContext, method: str) -> None:
        self._inner = inner
        self.method = method
        self.request_id = _request_id_from(inner.invocation_metadata())
        self.started = time.monotonic()
        self._deadline: float | None = None  # monotonic, from the server default
        self._trailing: tuple[tuple[str, str | bytes], ...] = ()
        self.set_trailing_metadata(())

    @classmethod
    def wrap(cls, context: grpc.ServicerContext, method: str) -> CallContext:
        """Returns ``context`` if it is already a CallContext, else wraps it."""
        if isinstance(context, CallContext):
            return context
        return cls(context, method)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    # --- deadline -------------------------------------------------------
    def client_time_remaining(self) -> float | None:
        """Seconds left on the client's own deadline, or None if it sent none."""
        remaining = self._inner.time_remaining()
        if remaining is None or remaining > _NO_DEADLINE_SECONDS:
            return None
        return float(remaining)

    def apply_default_deadline(self, seconds: float) -> None:
        """Sets a server-side deadline ``seconds`` from the call's start (if the client set none)."""
        if self.client_time_remaining() is None and self._deadline is None:
            self._deadline = self.started + seconds

    @property
    def has_server_deadline(self) -> bool:
        """True when the deadline in force is the server default, not the client's."""
        return self._deadline is not None

    def time_remaining(self) -> float | None:
        """Seconds until the effective deadline (client's or server default); None if none."""
        client = self.client_time_remaining()
        if self._deadline is None:
            return client
        server = max(self._deadline - time.monotonic(), 0.0)
        return server if client is None else min(client, server)

    def deadline_passed(self) -> bool:
        remaining = self.time_remaining()
        return remaining is not None and remaining <= 0.0

    # --- metadata -------------------------------------------------------
    def set_trailing_metadata(self, trailing_metadata: Metadata) -> None:
        """Sets trailers, always keeping ``x-request-id`` so clients can quote it."""
        extra = tuple((k, v) for k, v in trailing_metadata if k != REQUEST_ID_KEY)
        self._trailing = extra
        self._inner.set_trailing_metadata(extra + ((REQUEST_ID_KEY, self.request_id),))

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._trailing + ((REQUEST_ID_KEY, self.request_id),)

    def abort_with_status(self, status: grpc.Status) -> None:
        self.set_trailing_metadata(status.trailing_metadata or ())
        self._inner.abort(status.code, status.details)


# Handlers receive a CallContext where grpc would pass a ServicerContext; it
# delegates everything it does not override, so it is one by interface.
grpc.ServicerContext.register(CallContext)


def _request_id_from(metadata: Metadata | None) -> str:
    """The caller's ``x-request-id`` if it is printable and short, else a fresh one."""
    for key, value in metadata or ():
        if key == REQUEST_ID_KEY and isinstance(value, str):
            if 0 < len(value) <= _MAX_REQUEST_ID_CHARS and value.isprintable():
                return value
    return uuid.uuid4().hex
