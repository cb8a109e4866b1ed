"""``server``: runs the planning service until SIGTERM/SIGINT.

Settings come from ``LAYER2_*`` environment variables (see
``chimera.framework.ServerConfig.from_env``), then flags; the service binds
127.0.0.1:50052 unless told otherwise. With ``--discovery-target`` the
planner asks that DiscoveryService for the host's capacity when a request
carries no observations::

    bazel run //layers/layer2_planning:server -- --discovery-target 127.0.0.1:50051
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from chimera.framework import (
    ChimeraServer,
    MetricsRegistry,
    ServerConfig,
    ServiceRegistration,
    serve,
)
from chimera.framework.flags import add_server_flags, server_config_from_flags
from chimera.planning.capacity import DiscoverySource
from chimera.planning.core import PlanningCore
from chimera.planning.planner import Planner, check_templates
from chimera.planning.service import SERVICE_NAME, PlanningServicer
from chimera.planning.store import PlanStore
from chimera.planning.templates import TemplateSet
from chimera.v1 import planning_pb2_grpc

__all__ = ["Options", "build_server", "main", "parse_args"]

DEFAULT_PORT = 50052
ENV_PREFIX = "LAYER2_"


@dataclass(frozen=True)
class Options:
    """Layer-specific settings."""

    templates: Path | None = None
    discovery_target: str | None = None
    plan_retention: int = 1000


def parse_args(argv: Sequence[str]) -> tuple[ServerConfig, Options]:
    """ServerConfig (environment, then flags) and the planner options."""
    parser = argparse.ArgumentParser(prog="planning-server", description=__doc__.splitlines()[0])
    add_server_flags(parser, DEFAULT_PORT)
    parser.add_argument("--templates", type=Path, help="decomposition templates JSON")
    parser.add_argument("--discovery-target", help="DiscoveryService address for capacity")
    parser.add_argument("--plan-retention", type=int, default=1000, help="plans kept for GetPlan")
    args = parser.parse_args(list(argv))

    def check() -> None:
        if args.plan_retention < 1:
            parser.error("--plan-retention must be at least 1")

    config = server_config_from_flags(parser, args, ENV_PREFIX, ServerConfig(port=DEFAULT_PORT), check)
    return config, Options(args.templates, args.discovery_target, args.plan_retention)


def build_server(
    server_config: ServerConfig, options: Options, core: PlanningCore | None = None
) -> ChimeraServer:
    """The planning server (not started); broken templates fail here."""
    core = core or PlanningCore.load()
    templates = TemplateSet.load(options.templates)
    check_templates(core, templates)
    discovery = DiscoverySource(options.discovery_target) if options.discovery_target else None
    metrics = MetricsRegistry()
    servicer = PlanningServicer(
        Planner(core, templates, discovery), PlanStore(options.plan_retention), metrics
    )
    return ChimeraServer(
        server_config,
        [
            ServiceRegistration(
                planning_pb2_grpc.add_PlanningServiceServicer_to_server, servicer, SERVICE_NAME
            )
        ],
        metrics=metrics,
    )


def main(argv: Sequence[str] | None = None) -> int:
    server_config, options = parse_args(sys.argv[1:] if argv is None else argv)
    return serve(build_server(server_config, options))


if __name__ == "__main__":
    sys.exit(main())
