"""Runs the Execution service: ``bazel run //layers/layer4_execution:server -- --help``.

Every module must come with a layer-3 verdict: ``--validation-target``
(default ``127.0.0.1:50053``, env ``LAYER4_VALIDATION_TARGET``) names the
ValidationService that DeployModule asks. ``--trust-unvalidated-modules``
turns that check off for standalone use; it is off by default and announced
with a warning at start-up and on every deploy.

Server settings come from ``LAYER4_*`` environment variables
(``ServerConfig.from_env``) and are overridden by the flags every layer
shares (``chimera.framework.flags``). ``ExecutionServer`` is the same
assembly for in-process use (tests, benchmarks, the main job).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from chimera.execution.gate import ModuleGate, TrustingGate, VerdictGate
from chimera.execution.sandbox import Limits
from chimera.execution.scheduler import RetryPolicy
from chimera.execution.service import SERVICE_NAME, ExecutionOptions, ExecutionServicer
from chimera.framework import ChimeraServer, MetricsRegistry, ServerConfig, ServiceRegistration
from chimera.framework.flags import add_server_flags, server_config_from_flags
from chimera.v1 import execution_pb2_grpc

__all__ = ["ExecutionServer", "build_gate", "main", "parse_args"]

DEFAULT_PORT = 50054
DEFAULT_MAX_WORKERS = 32
DEFAULT_VALIDATION_TARGET = "127.0.0.1:50053"

_log = logging.getLogger("chimera.execution.server")


class ExecutionServer:
    """A ChimeraServer carrying the ExecutionService; a context manager.

    ``stop`` ends KPI streams first (so shutdown does not wait out their
    grace period), drains the gRPC server, then cancels remaining tasks.
    """

    def __init__(
        self,
        config: ServerConfig,
        options: ExecutionOptions,
        gate: ModuleGate,
        *,
        logger: logging.Logger | None = None,
    ) -> None:
        self.metrics = MetricsRegistry()
        self.servicer = ExecutionServicer(options, gate, self.metrics)
        self.server = ChimeraServer(
            config,
            [
                ServiceRegistration(
                    execution_pb2_grpc.add_ExecutionServiceServicer_to_server,
                    self.servicer,
                    SERVICE_NAME,
                )
            ],
            metrics=self.metrics,
            logger=logger,
        )
        self._stop_lock = threading.Lock()
        self._stopped = False

    def start(self) -> ExecutionServer:
        try:
            self.server.start()
        except BaseException:
            self.servicer.close()
            raise
        return self

    def stop(self, grace: float | None = None) -> None:
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self.servicer.end_streams()
        self.server.stop(grace)
        self.servicer.close()

    @property
    def target(self) -> str:
        return self.server.target

    @property
    def port(self) -> int:
        return self.server.port

    def __enter__(self) -> ExecutionServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


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
        "--kpi-buffer", type=int, default=d.kpi_buffer, help="reports buffered per KPI stream"
    )
    p.add_argument(
        "--max-kpi-streams", type=int, default=d.max_kpi_streams, help="open StreamKpis at once"
    )
    p.add_argument("--port-file", help="write the bound gRPC port here once serving")
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
        kpi_buffer=args.kpi_buffer,
        max_kpi_streams=args.max_kpi_streams,
    )


def main(argv: Sequence[str] | None = None) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config, args = parse_args(argv)
    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"layer4-execution: {exc}", file=sys.stderr)
        return 2
    gate = build_gate(args.validation_target, args.trust_unvalidated_modules)
    server = ExecutionServer(config, options, gate)
    try:
        server.start()
    except RuntimeError as exc:
        print(f"layer4-execution: {exc}", file=sys.stderr)
        return 1
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not done.is_set():
            done.set()
            _log.info(json.dumps({"event": "signal", "signal": signal.Signals(signum).name}))

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    _log.info(
        json.dumps(
            {
                "event": "layer4_ready",
                "target": server.target,
                "metrics_port": server.server.metrics_port,
                "module_gate": gate.description,
                "concurrency": options.concurrency,
            }
        )
    )
    if args.port_file:
        tmp = f"{args.port_file}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{server.port}\n")
        os.replace(tmp, args.port_file)
    while not done.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
