"""``server``: runs the discovery service until SIGTERM/SIGINT.

Settings come from ``LAYER1_*`` environment variables (see
``chimera.framework.ServerConfig.from_env``), then flags; the service binds
127.0.0.1:50051 unless told otherwise::

    bazel run //layers/layer1_discovery:server -- --port 50051 --config my.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from chimera.discovery.alerts import AlertLog
from chimera.discovery.config import DiscoveryConfig
from chimera.discovery.core import DiscoveryCore
from chimera.discovery.service import (
    SERVICE_NAME,
    BackgroundCollector,
    Discovery,
    DiscoveryServicer,
)
from chimera.framework import (
    ChimeraServer,
    MetricsRegistry,
    ServerConfig,
    ServiceRegistration,
    StopHooks,
    serve,
)
from chimera.framework.flags import add_server_flags, server_config_from_flags
from chimera.v1 import discovery_pb2_grpc

__all__ = ["build_server", "main", "parse_args"]

DEFAULT_PORT = 50051
ENV_PREFIX = "LAYER1_"


def parse_args(argv: Sequence[str]) -> tuple[ServerConfig, Path | None]:
    """ServerConfig (environment, then flags) and the config file path."""
    parser = argparse.ArgumentParser(prog="discovery-server", description=__doc__.splitlines()[0])
    add_server_flags(parser, DEFAULT_PORT)
    parser.add_argument(
        "--config", type=Path, help="thresholds/collection JSON (default: the layer's)"
    )
    args = parser.parse_args(list(argv))
    config = server_config_from_flags(parser, args, ENV_PREFIX, ServerConfig(port=DEFAULT_PORT))
    return config, args.config


def build_server(
    server_config: ServerConfig,
    config: DiscoveryConfig,
    core: DiscoveryCore | None = None,
) -> ChimeraServer:
    """The discovery server (not started); its background collector starts once it serves."""
    metrics = MetricsRegistry()
    discovery = Discovery(config, core or DiscoveryCore.load(), metrics=metrics)
    log = AlertLog(config.alert_retention)
    servicer = DiscoveryServicer(discovery, log)
    collector = BackgroundCollector(discovery, log)
    return ChimeraServer(
        server_config,
        [
            ServiceRegistration(
                discovery_pb2_grpc.add_DiscoveryServiceServicer_to_server, servicer, SERVICE_NAME
            )
        ],
        metrics=metrics,
        on_stop=StopHooks(before_drain=[collector.stop]),
        after_start=[collector.start],
    )


def main(argv: Sequence[str] | None = None) -> int:
    server_config, config_path = parse_args(sys.argv[1:] if argv is None else argv)
    return serve(build_server(server_config, DiscoveryConfig.load(config_path)))


if __name__ == "__main__":
    sys.exit(main())
