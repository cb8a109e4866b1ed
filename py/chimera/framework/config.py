"""Server settings, checked once at construction so a typo fails at start-up."""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["MIB", "ServerConfig"]

MIB = 1024 * 1024

_NONE_WORDS = frozenset({"", "none", "off", "disabled"})


@dataclass(frozen=True)
class ServerConfig:
    """How a layer service listens and behaves.

    Attributes:
      host: interface to bind; loopback unless the deployment says otherwise.
      port: gRPC port; 0 picks a free one (the server reports what it bound).
      metrics_port: Prometheus ``/metrics`` port; 0 picks a free one, None disables it.
      max_workers: handler threads; one RPC occupies one thread while it runs.
      max_concurrent_rpcs: RPCs accepted at once before RESOURCE_EXHAUSTED; None = no cap.
      grace_seconds: how long in-flight RPCs may finish on shutdown before being cancelled.
      max_message_bytes: largest request or response; larger requests are refused by
        the transport with RESOURCE_EXHAUSTED before any handler code runs.
      default_deadline_seconds: deadline for unary-response RPCs whose client sent none.
      default_stream_deadline_seconds: same for server-streaming RPCs; None because
        subscriptions (KPI streams, periodic collection) are meant to be long-lived.
      reflection: serve grpc.reflection so tools (``chimera.cli``, grpcurl) can call by name.
      port_file: once serving, the bound gRPC port is written here (atomically), so a
        parent that started the server with port 0 learns which port it got.
    """

    host: str = "127.0.0.1"
    port: int = 0
    metrics_port: int | None = 0
    max_workers: int = 8
    max_concurrent_rpcs: int | None = None
    grace_seconds: float = 5.0
    max_message_bytes: int = 4 * MIB
    default_deadline_seconds: float | None = 30.0
    default_stream_deadline_seconds: float | None = None
    reflection: bool = True
    port_file: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host.strip():
            raise ValueError(f"ServerConfig.host must be a non-empty string (got {self.host!r})")
        _check_int("port", self.port, 0, 65535)
        if self.metrics_port is not None:
            _check_int("metrics_port", self.metrics_port, 0, 65535)
        _check_int("max_workers", self.max_workers, 1, 4096)
        if self.max_concurrent_rpcs is not None:
            _check_int("max_concurrent_rpcs", self.max_concurrent_rpcs, 1, 1 << 20)
        _check_float("grace_seconds", self.grace_seconds, allow_zero=True)
        _check_int("max_message_bytes", self.max_message_bytes, 1, (1 << 31) - 1)
        for name in ("default_deadline_seconds", "default_stream_deadline_seconds"):
            value = getattr(self, name)
            if value is not None:
                _check_float(name, value, allow_zero=False)
        if self.port_file is not None and (not isinstance(self.port_file, str) or not self.port_file):
            raise ValueError(f"ServerConfig.port_file must be a non-empty path (got {self.port_file!r})")
        if not isinstance(self.reflection, bool):
            raise ValueError(f"ServerConfig.reflection must be a bool (got {self.reflection!r})")

    @classmethod
    def from_env(
        cls,
        prefix: str,
        environ: Mapping[str, str] | None = None,
        base: ServerConfig | None = None,
    ) -> ServerConfig:
        """Overrides ``base`` (or the defaults) with ``<PREFIX><FIELD>`` variables.

        ``ServerConfig.from_env("LAYER4_", base=ServerConfig(port=50054))`` reads
        ``LAYER4_PORT``, ``LAYER4_METRICS_PORT`` (``off`` disables), and so on.
        Unparsable values raise ValueError naming the variable.
        """
        env = os.environ if environ is None else environ
        start = base if base is not None else cls()
        hints = typing.get_type_hints(cls)
        changes: dict[str, object] = {}
        for field in dataclasses.fields(cls):
            key = f"{prefix}{field.name.upper()}"
            if key in env:
                try:
                    changes[field.name] = _parse(hints[field.name], env[key])
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
        return dataclasses.replace(start, **changes)

    @property
    def bind_address(self) -> str:
        """``host:port`` as grpc expects it (IPv6 literals bracketed)."""
        host = self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"ServerConfig.{name} must be an integer in {low}..{high} (got {value!r})")


def _check_float(name: str, value: object, *, allow_zero: bool) -> None:
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (value > 0 or (allow_zero and value == 0))
    )
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"ServerConfig.{name} must be a finite number {bound} (got {value!r})")


def _parse(hint: object, text: str) -> object:
    """Parses one environment value for a field annotated ``hint``."""
    args = typing.get_args(hint)
    if type(None) in args:
        if text.strip().lower() in _NONE_WORDS:
            return None
        (hint,) = [a for a in args if a is not type(None)]
    if hint is bool:
        word = text.strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {text!r}")
    if hint is int:
        return int(text.strip())
    if hint is float:
        return float(text.strip())
    return text
