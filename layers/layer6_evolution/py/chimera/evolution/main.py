"""``server``: runs the evolution service until SIGTERM/SIGINT.

Settings come from ``LAYER6_*`` environment variables (see
``chimera.framework.ServerConfig.from_env``), then flags; the service binds
127.0.0.1:50056 unless told otherwise. With ``--genetics-target`` the bandit's
statistics per problem class live in layer 7's genome store (GeneticsService
Put/GetBanditState), so they survive restarts and are shared by every process
using that store; without it they live in this process only::

    bazel run //layers/layer6_evolution:server -- --genetics-target 127.0.0.1:50057
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from chimera.evolution.bandits import BanditBook, BanditMemory, GenomeStoreMemory, InProcessMemory
from chimera.evolution.core import EvolutionCore
from chimera.evolution.problems import Limits
from chimera.evolution.runs import ARM_SETS, Runs
from chimera.evolution.service import SERVICE_NAME, EvolutionServicer
from chimera.framework import (
    ChimeraClient,
    ChimeraServer,
    ClientConfig,
    MetricsRegistry,
    ServerConfig,
    ServiceRegistration,
    StopHooks,
    serve,
)
from chimera.framework.flags import add_server_flags, server_config_from_flags
from chimera.v1 import evolution_pb2_grpc, genetics_pb2_grpc

__all__ = ["Options", "build_server", "main", "parse_args"]

DEFAULT_PORT = 50056
ENV_PREFIX = "LAYER6_"
# A read: safe for gRPC to retry when layer 7 is briefly unavailable.
GET_BANDIT_STATE = "chimera.v1.GeneticsService/GetBanditState"


@dataclass(frozen=True)
class Options:
    """Layer-specific settings."""

    #: GeneticsService (layer 7) whose genome store keeps the bandit state; None = in memory.
    genetics_target: str | None = None
    run_retention: int = 256
    max_concurrent_runs: int = 2


def parse_args(argv: Sequence[str]) -> tuple[ServerConfig, Options]:
    """ServerConfig (environment, then flags) and the evolution options."""
    parser = argparse.ArgumentParser(prog="evolution-server", description=__doc__.splitlines()[0])
    add_server_flags(parser, DEFAULT_PORT)
    parser.add_argument(
        "--genetics-target", help="GeneticsService address whose genome store keeps the bandit state"
    )
    parser.add_argument("--run-retention", type=int, default=256, help="runs kept for Step/SuggestOperators")
    parser.add_argument("--max-concurrent-runs", type=int, default=2, help="server-side runs at once")
    args = parser.parse_args(list(argv))

    def check() -> None:
        if args.run_retention < 1:
            parser.error("--run-retention must be at least 1")
        if args.max_concurrent_runs < 1:
            parser.error("--max-concurrent-runs must be at least 1")

    config = server_config_from_flags(parser, args, ENV_PREFIX, ServerConfig(port=DEFAULT_PORT), check)
    return config, Options(args.genetics_target, args.run_retention, args.max_concurrent_runs)


def build_server(
    server_config: ServerConfig, options: Options, core: EvolutionCore | None = None
) -> ChimeraServer:
    """The evolution server (not started)."""
    core = core or EvolutionCore.load()
    # Layer 7's store through the framework's client (deadlines, breaker); closed at stop.
    client = ChimeraClient(ClientConfig(idempotent_methods=(GET_BANDIT_STATE,)))
    memory: BanditMemory = (
        GenomeStoreMemory(client.stub(genetics_pb2_grpc.GeneticsServiceStub, options.genetics_target))
        if options.genetics_target
        else InProcessMemory()
    )
    book = BanditBook(core, ARM_SETS, memory)
    metrics = MetricsRegistry()
    runs = Runs(core, book, Limits(), options.run_retention, options.max_concurrent_runs)
    servicer = EvolutionServicer(runs, metrics)
    return ChimeraServer(
        server_config,
        [
            ServiceRegistration(
                evolution_pb2_grpc.add_EvolutionServiceServicer_to_server, servicer, SERVICE_NAME
            )
        ],
        metrics=metrics,
        on_stop=StopHooks(after_drain=[client.close]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    server_config, options = parse_args(sys.argv[1:] if argv is None else argv)
    return serve(build_server(server_config, options))


if __name__ == "__main__":
    sys.exit(main())
