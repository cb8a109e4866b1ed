"""``server``: runs the evolution service until SIGTERM/SIGINT.

Settings come from ``LAYER6_*`` environment variables (see
``chimera.framework.ServerConfig.from_env``), then flags; the service binds
127.0.0.1:50056 unless told otherwise. With ``--state-file`` the bandit's
statistics per problem class survive restarts::

    bazel run //layers/layer6_evolution:server -- --state-file /tmp/run/bandit.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chimera.evolution.bandits import BanditBook
from chimera.evolution.core import EvolutionCore
from chimera.evolution.problems import Limits
from chimera.evolution.runs import Runs
from chimera.evolution.service import SERVICE_NAME, EvolutionServicer
from chimera.evolution.strategies import Portfolio
from chimera.framework import (
    ChimeraServer,
    MetricsRegistry,
    ServerConfig,
    ServiceRegistration,
    serve,
)
from chimera.framework.flags import add_server_flags, server_config_from_flags
from chimera.v1 import evolution_pb2_grpc

__all__ = ["Options", "build_server", "main", "parse_args"]

DEFAULT_PORT = 50056
ENV_PREFIX = "LAYER6_"


@dataclass(frozen=True)
class Options:
    """Layer-specific settings."""

    state_file: Path | None = None
    run_retention: int = 256
    max_concurrent_runs: int = 2


def parse_args(argv: Sequence[str]) -> tuple[ServerConfig, Options]:
    """ServerConfig (environment, then flags) and the evolution options."""
    parser = argparse.ArgumentParser(prog="evolution-server", description=__doc__.splitlines()[0])
    add_server_flags(parser, DEFAULT_PORT)
    parser.add_argument("--state-file", type=Path, help="JSON file the bandit state persists in")
    parser.add_argument("--run-retention", type=int, default=256, help="runs kept for Step/SuggestOperators")
    parser.add_argument("--max-concurrent-runs", type=int, default=2, help="server-side runs at once")
    args = parser.parse_args(list(argv))

    def check() -> None:
        if args.run_retention < 1:
            parser.error("--run-retention must be at least 1")
        if args.max_concurrent_runs < 1:
            parser.error("--max-concurrent-runs must be at least 1")
        if args.state_file is not None and not args.state_file.parent.is_dir():
            parser.error(f"--state-file: directory {args.state_file.parent} does not exist")

    config = server_config_from_flags(parser, args, ENV_PREFIX, ServerConfig(port=DEFAULT_PORT), check)
    return config, Options(args.state_file, args.run_retention, args.max_concurrent_runs)


def build_server(
    server_config: ServerConfig, options: Options, core: EvolutionCore | None = None
) -> ChimeraServer:
    """The evolution server (not started); a state file naming other arms fails here."""
    core = core or EvolutionCore.load()
    book = BanditBook(core, Portfolio.names, options.state_file)
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
    )


def main(argv: Sequence[str] | None = None) -> int:
    server_config, options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        server = build_server(server_config, options)
    except ValueError as error:  # a state file this server cannot read
        print(f"evolution-server: --state-file {options.state_file}: {error}", file=sys.stderr)
        return 2
    return serve(server)


if __name__ == "__main__":
    sys.exit(main())
