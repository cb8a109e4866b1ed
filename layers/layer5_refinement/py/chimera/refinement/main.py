"""``server``: runs the refinement service until SIGTERM/SIGINT.

Settings come from ``LAYER5_*`` environment variables (see
``chimera.framework.ServerConfig.from_env``), then flags; the service binds
127.0.0.1:50055 unless told otherwise. With ``--execution-target`` it keeps
a subscription to that ExecutionService's StreamKpis (reconnecting with
backoff) and buffers every report it receives::

    bazel run //layers/layer5_refinement:server -- --execution-target 127.0.0.1:50054
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from chimera.framework import (
    ChimeraServer,
    MetricsRegistry,
    ServerConfig,
    ServiceRegistration,
    StopHooks,
    serve,
)
from chimera.framework.flags import add_server_flags, server_config_from_flags
from chimera.refinement.buffers import KpiBuffers
from chimera.refinement.core import RefinementCore
from chimera.refinement.experiment_journal import ExperimentJournal
from chimera.refinement.service import SERVICE_NAME, RefinementMetrics, RefinementServicer
from chimera.refinement.subscription import Backoff, KpiSubscription
from chimera.v1 import common_pb2, refinement_pb2_grpc

__all__ = ["Options", "build_server", "main", "parse_args"]

DEFAULT_PORT = 50055
ENV_PREFIX = "LAYER5_"


@dataclass(frozen=True)
class Options:
    """Layer-specific settings."""

    execution_target: str | None = None
    module_name: str = ""
    buffer_capacity: int = 1000
    max_versions: int = 256
    experiment_capacity: int = 10_000
    #: Where the experiments' journal lives; None = in memory only.
    state_dir: Path | None = None
    backoff: Backoff = Backoff()


def parse_args(argv: Sequence[str]) -> tuple[ServerConfig, Options]:
    """ServerConfig (environment, then flags) and the refinement options."""
    parser = argparse.ArgumentParser(prog="refinement-server", description=__doc__.splitlines()[0])
    add_server_flags(parser, DEFAULT_PORT)
    parser.add_argument("--execution-target", help="ExecutionService address to stream KPIs from")
    parser.add_argument("--module-name", default="", help="only stream KPIs of this module slot")
    parser.add_argument("--buffer-capacity", type=int, default=1000, help="reports kept per version")
    parser.add_argument("--max-versions", type=int, default=256, help="module versions kept")
    parser.add_argument("--experiment-capacity", type=int, default=10_000, help="experiments kept")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="directory of the experiments' journal; a restart on it resumes every experiment",
    )
    args = parser.parse_args(list(argv))

    def check() -> None:
        for flag in ("buffer_capacity", "max_versions", "experiment_capacity"):
            if getattr(args, flag) < 1:
                parser.error(f"--{flag.replace('_', '-')} must be at least 1")

    config = server_config_from_flags(parser, args, ENV_PREFIX, ServerConfig(port=DEFAULT_PORT), check)
    return config, Options(
        execution_target=args.execution_target,
        module_name=args.module_name,
        buffer_capacity=args.buffer_capacity,
        max_versions=args.max_versions,
        experiment_capacity=args.experiment_capacity,
        state_dir=args.state_dir,
    )


def build_server(
    server_config: ServerConfig, options: Options, core: RefinementCore | None = None
) -> ChimeraServer:
    """The refinement server (not started); its KPI subscription starts once it serves."""
    core = core or RefinementCore.load()
    registry = MetricsRegistry()
    metrics = RefinementMetrics(registry)
    buffers = KpiBuffers(options.buffer_capacity, options.max_versions)
    journal = ExperimentJournal(options.state_dir) if options.state_dir is not None else None
    servicer = RefinementServicer(core, buffers, metrics, options.experiment_capacity, journal)
    subscription = None
    if options.execution_target:

        def sink(reports: Iterable[common_pb2.KpiReport]) -> None:
            result = buffers.ingest(reports)
            metrics.ingested.labels(source="stream").inc(result.accepted)
            metrics.rejected.labels(reason="non_finite").inc(result.rejected_non_finite)
            metrics.rejected.labels(reason="duplicate_task_id").inc(result.duplicates)
            metrics.evicted.inc(result.evicted)
            metrics.buffered.set(result.buffered)

        subscription = KpiSubscription(
            options.execution_target,
            sink,
            module_name=options.module_name,
            backoff=options.backoff,
            metrics=registry,
        )
    return ChimeraServer(
        server_config,
        [
            ServiceRegistration(
                refinement_pb2_grpc.add_RefinementServiceServicer_to_server, servicer, SERVICE_NAME
            )
        ],
        metrics=registry,
        on_stop=StopHooks(
            before_drain=[subscription.stop] if subscription is not None else [],
            after_drain=[journal.close] if journal is not None else [],
        ),
        after_start=[subscription.start] if subscription is not None else [],
    )


def main(argv: Sequence[str] | None = None) -> int:
    server_config, options = parse_args(sys.argv[1:] if argv is None else argv)
    return serve(build_server(server_config, options))


if __name__ == "__main__":
    sys.exit(main())
