"""The command-line flags every layer server shares.

``--host``, ``--port``, ``--metrics-port``, ``--max-workers`` and ``--port-file`` override the
``<PREFIX>*`` environment settings (:meth:`ServerConfig.from_env`), which
override the layer's defaults (its port, and any other ServerConfig field it
sets differently); a value ServerConfig rejects is a usage error naming the
field, not a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

from chimera.framework.config import ServerConfig

__all__ = ["add_server_flags", "server_config_from_flags"]

_OFF_WORDS = ("off", "none", "disabled")


def add_server_flags(parser: argparse.ArgumentParser, default_port: int) -> None:
    """Adds the shared flags (before a layer adds its own, so ``--help`` lists them first)."""
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help=f"gRPC port; 0 picks one (default {default_port})")
    parser.add_argument("--metrics-port", help="Prometheus port; 0 picks one, 'off' disables")
    parser.add_argument("--max-workers", type=int, help="handler threads")
    parser.add_argument("--port-file", help="write the bound gRPC port here once serving")


def _metrics_port(parser: argparse.ArgumentParser, text: str) -> int | None:
    if text.strip().lower() in _OFF_WORDS:
        return None
    try:
        return int(text)
    except ValueError:
        parser.error(f"--metrics-port: {text!r} is neither a port number nor 'off'")


def server_config_from_flags(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    env_prefix: str,
    defaults: ServerConfig,
    check: Callable[[], None] | None = None,
) -> ServerConfig:
    """The layer's ServerConfig: ``defaults``, then ``env_prefix`` variables, then flags.

    ``check`` (the layer's own flag checks, reporting through ``parser.error``)
    runs after the flags are read and before they are applied, so a layer
    flag's mistake is reported ahead of a rejected server value.
    """
    config = ServerConfig.from_env(env_prefix, base=defaults)
    changes: dict[str, Any] = {}
    if args.host is not None:
        changes["host"] = args.host
    if args.port is not None:
        changes["port"] = args.port
    if args.metrics_port is not None:
        changes["metrics_port"] = _metrics_port(parser, args.metrics_port)
    if args.max_workers is not None:
        changes["max_workers"] = args.max_workers
    if args.port_file is not None:
        changes["port_file"] = args.port_file
    if check is not None:
        check()
    try:
        return dataclasses.replace(config, **changes)
    except ValueError as exc:
        parser.error(str(exc))
