"""One structured JSON line per RPC, for grep and log shippers alike.

Fields: method, type, code, latency_ms, request_id, peer, responses, and the
status details when the code is not OK. Request and response bodies are never
logged: they may carry secrets.
"""

from __future__ import annotations

import json
import logging

import grpc

from chimera.framework.context import CallContext
from chimera.framework.interceptors.base import ObservingInterceptor, Outcome, RpcInfo

__all__ = ["AccessLogInterceptor"]

_SERVER_FAULTS = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)
_MAX_DETAILS = 200


class AccessLogInterceptor(ObservingInterceptor):
    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger

    def on_complete(self, context: CallContext, info: RpcInfo, outcome: Outcome) -> None:
        record: dict[str, object] = {
            "event": "rpc",
            "method": info.method,
            "type": info.grpc_type,
            "code": outcome.code.name,
            "latency_ms": round(outcome.seconds * 1000.0, 3),
            "request_id": context.request_id,
            "peer": context.peer(),
            "responses": outcome.responses,
        }
        if outcome.code != grpc.StatusCode.OK:
            details = _details_of(context)
            if details:
                record["details"] = details[:_MAX_DETAILS]
        level = logging.ERROR if outcome.code in _SERVER_FAULTS else logging.INFO
        self._log.log(level, json.dumps(record, sort_keys=True))


def _details_of(context: CallContext) -> str:
    raw = context.details()
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return raw or ""
