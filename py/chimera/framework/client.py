"""Channels to other layers with the call policy every caller needs.

``ChimeraClient`` owns one channel per target (channels are expensive and
multiplex calls, so they are shared) and puts three policies on each:

* a default deadline on every call that sets none, so a hung peer cannot hang
  the caller;
* transparent retries for the methods listed as idempotent, done by gRPC
  itself from a service config (``methodConfig.retryPolicy``): attempts,
  exponential backoff, and only UNAVAILABLE by default, because retrying a
  call that reached the handler is only safe when repeating it is harmless;
* a per-target ``CircuitBreaker`` around each logical call (after retries).

Generated stubs work unchanged: ``client.stub(ExecutionServiceStub, target)``.
"""

from __future__ import annotations

import collections
import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

import grpc

from chimera.framework.breaker import CircuitBreaker
from chimera.framework.config import MIB

__all__ = ["ChimeraClient", "ClientConfig", "RetryPolicy"]

_Stub = TypeVar("_Stub")


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC retry settings for idempotent methods (gRPC caps attempts at 5)."""

    max_attempts: int = 3
    initial_backoff_seconds: float = 0.1
    max_backoff_seconds: float = 2.0
    backoff_multiplier: float = 2.0
    retryable_codes: tuple[str, ...] = ("UNAVAILABLE",)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not 2 <= self.max_attempts <= 5:
            raise ValueError(f"RetryPolicy.max_attempts must be in 2..5 (got {self.max_attempts!r})")
        for name in ("initial_backoff_seconds", "max_backoff_seconds", "backoff_multiplier"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"RetryPolicy.{name} must be a finite number > 0 (got {value!r})")
        unknown = [c for c in self.retryable_codes if c not in grpc.StatusCode.__members__]
        if unknown or not self.retryable_codes:
            raise ValueError(f"RetryPolicy.retryable_codes has unknown codes {unknown}")

    def method_config(self, methods: tuple[str, ...]) -> dict[str, Any]:
        """One ``methodConfig`` entry for "pkg.Service/Method" (or "pkg.Service") names."""
        names = []
        for method in methods:
            service, _, name = method.strip("/").partition("/")
            names.append({"service": service, "method": name} if name else {"service": service})
        return {
            "name": names,
            "retryPolicy": {
                "maxAttempts": self.max_attempts,
                "initialBackoff": f"{self.initial_backoff_seconds:.6f}s",
                "maxBackoff": f"{self.max_backoff_seconds:.6f}s",
                "backoffMultiplier": self.backoff_multiplier,
                "retryableStatusCodes": list(self.retryable_codes),
            },
        }


@dataclass(frozen=True)
class ClientConfig:
    """Call policy for every channel a ChimeraClient opens.

    Attributes:
      default_deadline_seconds: for unary-response calls that set no timeout.
      default_stream_deadline_seconds: for streaming-response calls; None leaves
        subscriptions open-ended.
      idempotent_methods: "pkg.Service/Method" or "pkg.Service" (all its methods)
        that gRPC may retry under ``retry``.
      max_reconnect_backoff_seconds: cap on gRPC's reconnect backoff (default
        120 s), so a restarted peer is found again within a breaker cool-down.
      wait_for_ready: calls that do not say otherwise wait (up to their
        deadline) for a peer that is down instead of failing at once; with
        retries, an idempotent call cut off by the peer's death waits for its
        restart. For callers of a supervised stack.
      breaker_failure_threshold / breaker_cooldown_seconds: see CircuitBreaker.
    """

    default_deadline_seconds: float | None = 10.0
    default_stream_deadline_seconds: float | None = None
    idempotent_methods: tuple[str, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_message_bytes: int = 4 * MIB
    max_reconnect_backoff_seconds: float = 5.0
    breaker_failure_threshold: int = 5
    breaker_cooldown_seconds: float = 10.0
    wait_for_ready: bool = False

    def __post_init__(self) -> None:
        for name in (
            "default_deadline_seconds",
            "default_stream_deadline_seconds",
            "max_reconnect_backoff_seconds",
            "breaker_cooldown_seconds",
        ):
            value = getattr(self, name)
            if value is None and name.startswith("default_"):
                continue
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"ClientConfig.{name} must be a finite number > 0 (got {value!r})")
        for name in ("max_message_bytes", "breaker_failure_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ClientConfig.{name} must be an integer >= 1 (got {value!r})")
        if isinstance(self.idempotent_methods, str):
            raise ValueError("ClientConfig.idempotent_methods must be a tuple of names, not a string")

    def service_config(self) -> str:
        """The JSON service config gRPC reads retries from."""
        configs = []
        if self.idempotent_methods:
            configs.append(self.retry.method_config(tuple(self.idempotent_methods)))
        return json.dumps({"methodConfig": configs})

    def channel_options(self) -> list[tuple[str, Any]]:
        backoff_ms = int(self.max_reconnect_backoff_seconds * 1000)
        return [
            ("grpc.service_config", self.service_config()),
            ("grpc.enable_retries", 1),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.initial_reconnect_backoff_ms", min(1000, backoff_ms)),
            ("grpc.max_reconnect_backoff_ms", backoff_ms),
        ]


class ChimeraClient:
    """Owns channels (one per target) and their breakers; close it when done."""

    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config if config is not None else ClientConfig()
        self._clock = clock
        self._lock = threading.Lock()
        self._targets: dict[str, _Target] = {}
        self._closed = False

    def channel_for(self, target: str) -> grpc.Channel:
        """The shared channel to ``target`` ("host:port"), with deadline, retry and breaker."""
        return self._target(target).channel

    def breaker_for(self, target: str) -> CircuitBreaker:
        return self._target(target).breaker

    def stub(self, stub_class: Callable[[grpc.Channel], _Stub], target: str) -> _Stub:
        """``client.stub(echo_pb2_grpc.EchoServiceStub, "127.0.0.1:50054")``."""
        return stub_class(self.channel_for(target))

    def close(self) -> None:
        with self._lock:
            targets = list(self._targets.values())
            self._targets.clear()
            self._closed = True
        for entry in targets:
            entry.channel.close()  # an intercepted channel closes the one it wraps

    def __enter__(self) -> ChimeraClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _target(self, target: str) -> _Target:
        with self._lock:
            if self._closed:
                raise RuntimeError("the ChimeraClient is closed")
            entry = self._targets.get(target)
            if entry is None:
                breaker = CircuitBreaker(
                    target,
                    failure_threshold=self.config.breaker_failure_threshold,
                    cooldown_seconds=self.config.breaker_cooldown_seconds,
                    clock=self._clock,
                )
                channel = grpc.intercept_channel(
                    grpc.insecure_channel(target, options=self.config.channel_options()),
                    _CallPolicy(self.config, breaker),
                )
                entry = self._targets[target] = _Target(channel, breaker)
            return entry


class _Target(NamedTuple):
    channel: grpc.Channel  # with the call policy on it
    breaker: CircuitBreaker


_Details = collections.namedtuple(
    "_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
)


class _CallDetails(_Details, grpc.ClientCallDetails):
    pass


class _CallPolicy(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Default deadline plus breaker around every call on one channel."""

    def __init__(self, config: ClientConfig, breaker: CircuitBreaker) -> None:
        self._config = config
        self._breaker = breaker

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._call(continuation, details, request, self._config.default_deadline_seconds)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Iterator[Any]) -> Any:
        return self._call(continuation, details, requests, self._config.default_deadline_seconds)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return self._call(
            continuation, details, request, self._config.default_stream_deadline_seconds
        )

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Iterator[Any]) -> Any:
        return self._call(
            continuation, details, requests, self._config.default_stream_deadline_seconds
        )

    def _call(self, continuation: Any, details: Any, request: Any, default: float | None) -> Any:
        trial = self._breaker.acquire()
        timeout = details.timeout if details.timeout is not None else default
        wait_for_ready = details.wait_for_ready
        if wait_for_ready is None and self._config.wait_for_ready:
            wait_for_ready = True
        if timeout != details.timeout or wait_for_ready != details.wait_for_ready:
            details = _CallDetails(
                details.method,
                timeout,
                details.metadata,
                details.credentials,
                wait_for_ready,
                details.compression,
            )
        try:
            call = continuation(details, request)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            self._breaker.record(code, trial=trial)
            raise
        except BaseException:
            self._breaker.record(grpc.StatusCode.UNKNOWN, trial=trial)
            raise
        call.add_done_callback(lambda done: self._breaker.record(done.code(), trial=trial))
        return call
