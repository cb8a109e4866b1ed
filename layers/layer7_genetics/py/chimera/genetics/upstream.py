"""A failed call to another layer (execution, resources), its status passed on."""

from __future__ import annotations

import grpc

from chimera.framework.errors import ServiceError

__all__ = ["UpstreamError"]


class UpstreamError(ServiceError):
    """Another layer refused or failed a call; the caller gets its status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code  # type: ignore[misc]
