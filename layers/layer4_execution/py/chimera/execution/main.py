"""Runs the Execution service: ``bazel run //layers/layer4_execution:server -- --help``.

Every module must come with a layer-3 verdict: ``--validation-target``
(default ``127.0.0.1:50053``, env ``LAYER4_VALIDATION_TARGET``) names the
ValidationService that DeployModule asks. ``--trust-unvalidated-modules``
turns that check off for standalone use; it is off by default and announced
with a warning at start-up and on every deploy.

Server settings come from ``LAYER4_*`` environment variables
(``ServerConfig.from_env``) and are overridden by the flags every layer
shares (``chimera.framework.flags``). ``build_server`` is the same
assembly for in-process use (tests, benchmarks, the main job).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from chimera.execution.gate import ModuleGate, TrustingGate, VerdictGate
from chimera.execution.sandbox import Limits
from chimera.execution.scheduler import RetryPolicy
from chimera.execution.options import ExecutionOptions
from chimera.execution.service import SERVICE_NAME, ExecutionServicer
from chimera.framework import (
    ChimeraServer,
    MetricsRegistry,
    ServerConfig,
    ServiceRegistration,
    StopHooks,
    serve,
)
from chimera.framework.flags import add_server_flags, server_config_from_flags
from chimera.v1 import execution_pb2_grpc

__all__ = ["build_gate", "build_server", "main", "options_from_args", "parse_args"]

DEFAULT_PORT = 50054
DEFAULT_MAX_WORKERS = 32
DEFAULT_VALIDATION_TARGET = "127.0.0.1:50053"

_log = logging.getLogger("chimera.execution.main")


def build_server(
    config: ServerConfig,
    options: ExecutionOptions,
    gate: ModuleGate,
    *,
    logger: logging.Logger | None = None,
) -> ChimeraServer:
    """The Execution server (not started); its servicer is ``servicer(SERVICE_NAME)``.

    Stopping ends KPI streams first (so the drain does not wait out their
    deadlines), drains the gRPC server, then cancels remaining tasks.
    """
    metrics = MetricsRegistry()
    servicer = ExecutionServicer(options, gate, metrics)
    return ChimeraServer(
        config,
        [
            ServiceRegistration(
                execution_pb2_grpc.add_ExecutionServiceServicer_to_server,
                servicer,
                SERVICE_NAME,
            )
        ],
        metrics=metrics,
        logger=logger,
        on_stop=StopHooks(before_drain=[servicer.end_streams], after_drain=[servicer.close]),
    )


def build_gate(validation_target: str, trust_unvalidated: bool) -> ModuleGate:
    """The module gate for the flags; trusting everything needs the explicit flag."""
    if trust_unvalidated:
        _log.warning(
            "*** --trust-unvalidated-modules: DeployModule will NOT check layer-3 verdicts; "
            "any well-formed module can be deployed. Standalone use only. ***"
        )
        return TrustingGate()
    return VerdictGate(validation_target)


def parse_args(argv: Sequence[str] | None = None) -> tuple[ServerConfig, argparse.Namespace]:
    """ServerConfig (defaults, LAYER4_* environment, then flags) and the layer's own flags."""
    env = os.environ
    d = ExecutionOptions()
    p = argparse.ArgumentParser(
        prog="layer4-execution", description="Chimera Layer 4 Execution gRPC service."
    )
    add_server_flags(p, DEFAULT_PORT)
    p.add_argument(
        "--validation-target",
        default=env.get("LAYER4_VALIDATION_TARGET", DEFAULT_VALIDATION_TARGET),
        help="host:port of the layer-3 ValidationService that DeployModule consults",
    )
    p.add_argument(
        "--trust-unvalidated-modules",
        action="store_true",
        help="DANGEROUS, standalone use only: deploy modules without a layer-3 verdict",
    )
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="tasks run at once")
    p.add_argument(
        "--max-queue", type=int, default=d.max_queue, help="queued tasks before RESOURCE_EXHAUSTED"
    )
    p.add_argument("--default-fuel", type=int, default=d.default_limits.fuel)
    p.add_argument("--default-memory-bytes", type=int, default=d.default_limits.memory_bytes)
    p.add_argument("--default-timeout-ms", type=float, default=d.default_limits.timeout_ms)
    p.add_argument("--max-fuel", type=int, default=d.max_limits.fuel)
    p.add_argument("--max-memory-bytes", type=int, default=d.max_limits.memory_bytes)
    p.add_argument("--max-timeout-ms", type=float, default=d.max_limits.timeout_ms)
    p.add_argument("--retry-base-delay-s", type=float, default=d.retry.base_delay_s)
    p.add_argument("--retry-max-delay-s", type=float, default=d.retry.max_delay_s)
    p.add_argument(
        "--tick-ms", type=float, default=d.tick_ms, help="epoch tick (deadline granularity)"
    )
    p.add_argument("--cache-dir", help="private directory for compiled modules (.cwasm)")
    p.add_argument(
        "--state-dir",
        help="directory of the deployment record; a restart on it re-deploys every slot's versions",
    )
    p.add_argument(
        "--kpi-buffer", type=int, default=d.kpi_buffer, help="reports buffered per KPI stream"
    )
    p.add_argument(
        "--max-kpi-streams", type=int, default=d.max_kpi_streams, help="open StreamKpis at once"
    )
    args = p.parse_args(argv)
    # KPI streams each hold a handler thread: more workers than the default 8.
    defaults = ServerConfig(port=DEFAULT_PORT, max_workers=DEFAULT_MAX_WORKERS)
    return server_config_from_flags(p, args, "LAYER4_", defaults), args


def options_from_args(args: argparse.Namespace) -> ExecutionOptions:
    """ExecutionOptions for parsed flags; ValueError names a bad value."""
    return ExecutionOptions(
        concurrency=args.concurrency,
        max_queue=args.max_queue,
        default_limits=Limits(
            args.default_fuel, args.default_memory_bytes, args.default_timeout_ms
        ),
        max_limits=Limits(args.max_fuel, args.max_memory_bytes, args.max_timeout_ms),
        retry=RetryPolicy(base_delay_s=args.retry_base_delay_s, max_delay_s=args.retry_max_delay_s),
        tick_ms=args.tick_ms,
        cache_dir=args.cache_dir,
        state_dir=args.state_dir,
        kpi_buffer=args.kpi_buffer,
        max_kpi_streams=args.max_kpi_streams,
    )


def main(argv: Sequence[str] | None = None) -> int:
    config, args = parse_args(argv)
    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"layer4-execution: {exc}", file=sys.stderr)
        return 2
    gate = build_gate(args.validation_target, args.trust_unvalidated_modules)

    def announce(server: ChimeraServer) -> None:
        _log.info(
            json.dumps(
                {
                    "event": "layer4_ready",
                    "target": server.target,
                    "metrics_port": server.metrics_port,
                    "module_gate": gate.description,
                    "concurrency": options.concurrency,
                }
            )
        )

    try:
        server = build_server(config, options, gate)
    except ValueError as exc:  # an unreadable deployment record under --state-dir
        print(f"layer4-execution: {exc}", file=sys.stderr)
        return 1
    return serve(server, ready=announce)


if __name__ == "__main__":
    sys.exit(main())
