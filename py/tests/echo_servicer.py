"""The EchoService implementation the framework tests run (in-process and in serve_echo.py)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import grpc

from chimera.framework import (
    ChimeraServer,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServiceRegistration,
)
from chimera.testing.v1 import echo_pb2, echo_pb2_grpc

SERVICE = echo_pb2.DESCRIPTOR.services_by_name["EchoService"].full_name

# The ``start_server`` fixture's type: keyword ServerConfig overrides -> a started server.
StartServer = Callable[..., ChimeraServer]


class EchoServicer(echo_pb2_grpc.EchoServiceServicer):
    """Counts calls per method so tests can tell whether a handler ran."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self._flaky: Counter[str] = Counter()

    def _count(self, method: str) -> None:
        with self._lock:
            self.calls[method] += 1

    def Echo(self, request: echo_pb2.EchoRequest, context: grpc.ServicerContext) -> echo_pb2.EchoReply:
        self._count("Echo")
        return echo_pb2.EchoReply(message=request.message, index=request.priority)

    def Slow(self, request: echo_pb2.SlowRequest, context: grpc.ServicerContext) -> echo_pb2.EchoReply:
        self._count("Slow")
        end = time.monotonic() + request.sleep_ms / 1000.0
        while (left := end - time.monotonic()) > 0:
            budget = None if request.ignore_deadline else context.time_remaining()
            if budget is not None and budget <= 0:
                break  # a cooperative handler gives up at its deadline
            time.sleep(min(left, 0.01))
        return echo_pb2.EchoReply(message=request.message or "slow")

    def Count(
        self, request: echo_pb2.CountRequest, context: grpc.ServicerContext
    ) -> Iterator[echo_pb2.EchoReply]:
        self._count("Count")
        for index in range(request.count):
            if index and request.interval_ms:
                time.sleep(request.interval_ms / 1000.0)
            yield echo_pb2.EchoReply(message=f"n{index}", index=index)

    def Fail(self, request: echo_pb2.FailRequest, context: grpc.ServicerContext) -> echo_pb2.EchoReply:
        self._count("Fail")
        kind = request.kind
        if kind == "invalid_argument":
            raise InvalidArgument("kind", "must name a real failure")
        if kind == "failed_precondition":
            raise FailedPrecondition("the plan has not been validated")
        if kind == "not_found":
            raise NotFound("task t-1 does not exist")
        if kind == "resource_exhausted":
            raise ResourceExhausted("queue is full (capacity 2)")
        if kind == "crash":
            raise RuntimeError("secret-token-123 leaked into an exception")
        if kind == "abort":
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "handler chose this status")
        if kind == "flaky":
            with self._lock:
                self._flaky[request.key] += 1
                attempt = self._flaky[request.key]
            if attempt <= request.times:
                context.abort(grpc.StatusCode.UNAVAILABLE, f"flaky attempt {attempt}")
            return echo_pb2.EchoReply(message=f"ok after {attempt}", index=attempt)
        return echo_pb2.EchoReply(message="no failure")


def registration(servicer: EchoServicer) -> ServiceRegistration:
    return ServiceRegistration(echo_pb2_grpc.add_EchoServiceServicer_to_server, servicer, SERVICE)
