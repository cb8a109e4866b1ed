"""``server``: runs the genetics service until SIGTERM/SIGINT.

Settings come from ``LAYER7_*`` environment variables (see
``chimera.framework.ServerConfig.from_env``), then flags; the service binds
127.0.0.1:50057 unless told otherwise. Genomes go to a SQLite file under the
run directory (``--run-dir``, default ``./run``) unless ``--store`` names
another file or a ``postgresql://`` URL. DeployBest needs
``--execution-target`` (layer 4). With ``--resources-target`` (layer 8) every
run is asked for before it starts (BeginRun) and bounded by its grant::

    bazel run //layers/layer7_genetics:server -- --run-dir /tmp/run \
        --execution-target 127.0.0.1:50054 --resources-target 127.0.0.1:50058
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chimera.framework import (
    ChimeraClient,
    ChimeraServer,
    MetricsRegistry,
    ServerConfig,
    ServiceRegistration,
    StopHooks,
    serve,
)
from chimera.framework.flags import add_server_flags, server_config_from_flags
from chimera.genetics.core import GeneticsCore
from chimera.genetics.generations import Breeder, BreederLimits
from chimera.genetics.grants import RunGrants
from chimera.genetics.service import SERVICE_NAME, GeneticsServicer
from chimera.genetics.store import GenomeStore
from chimera.v1 import execution_pb2_grpc, genetics_pb2_grpc, resources_pb2_grpc

__all__ = ["Options", "build_server", "main", "parse_args"]

DEFAULT_PORT = 50057
ENV_PREFIX = "LAYER7_"
STORE_FILE = "genomes.sqlite"


@dataclass(frozen=True)
class Options:
    """Layer-specific settings."""

    run_dir: Path = Path("run")
    #: A SQLite file or a postgresql:// URL; None = run_dir / genomes.sqlite.
    store: str | None = None
    execution_target: str | None = None
    default_population: int = 32
    #: ResourcesService (layer 8) asked for each run's grant; None = runs are not bounded.
    resources_target: str | None = None

    @property
    def store_target(self) -> str:
        return self.store or str(self.run_dir / STORE_FILE)


def parse_args(argv: Sequence[str]) -> tuple[ServerConfig, Options]:
    """ServerConfig (environment, then flags) and the genetics options."""
    parser = argparse.ArgumentParser(prog="genetics-server", description=__doc__.splitlines()[0])
    add_server_flags(parser, DEFAULT_PORT)
    parser.add_argument("--run-dir", type=Path, default=Path("run"), help="directory of the genome store")
    parser.add_argument("--store", help="genome store: a SQLite file or a postgresql:// URL")
    parser.add_argument("--execution-target", help="ExecutionService address for DeployBest")
    parser.add_argument("--default-population", type=int, default=32, help="members of a new population")
    parser.add_argument(
        "--resources-target", help="ResourcesService address asked for each run's grant (BeginRun)"
    )
    args = parser.parse_args(list(argv))

    def check() -> None:
        if not 1 <= args.default_population <= 100_000:
            parser.error("--default-population must be in [1, 100000]")

    config = server_config_from_flags(parser, args, ENV_PREFIX, ServerConfig(port=DEFAULT_PORT), check)
    return config, Options(
        args.run_dir, args.store, args.execution_target, args.default_population, args.resources_target
    )


def build_server(
    server_config: ServerConfig, options: Options, core: GeneticsCore | None = None
) -> ChimeraServer:
    """The genetics server (not started); an unreachable or newer store fails here."""
    core = core or GeneticsCore.load()
    store = GenomeStore.open(options.store_target)
    # One client for the calls to layers 4 and 8: the framework's deadlines and breaker.
    client = ChimeraClient()
    execution = (
        client.stub(execution_pb2_grpc.ExecutionServiceStub, options.execution_target)
        if options.execution_target
        else None
    )
    grants = (
        RunGrants(
            client.stub(resources_pb2_grpc.ResourcesServiceStub, options.resources_target),
            store=store,  # grants recorded there are held again after a restart
        )
        if options.resources_target
        else None
    )
    metrics = MetricsRegistry()
    breeder = Breeder(core, store, BreederLimits(default_population=options.default_population))
    servicer = GeneticsServicer(breeder, store, execution, metrics, grants=grants)
    return ChimeraServer(
        server_config,
        [
            ServiceRegistration(
                genetics_pb2_grpc.add_GeneticsServiceServicer_to_server, servicer, SERVICE_NAME
            )
        ],
        metrics=metrics,
        # The channels and the store are closed once no handler uses them any more.
        on_stop=StopHooks(after_drain=[client.close, store.close]),
    )


def main(argv: Sequence[str] | None = None) -> int:
    server_config, options = parse_args(sys.argv[1:] if argv is None else argv)
    return serve(build_server(server_config, options))


if __name__ == "__main__":
    sys.exit(main())
