"""``server``: runs the validation service until SIGTERM/SIGINT.

Settings come from ``LAYER3_*`` environment variables (see
``chimera.framework.ServerConfig.from_env``), then flags; the service binds
127.0.0.1:50053 unless told otherwise::

    bazel run //layers/layer3_validation:server -- --policy /path/to/policy.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from chimera.framework import (
    ChimeraServer,
    MetricsRegistry,
    ServerConfig,
    ServiceRegistration,
    serve,
)
from chimera.framework.flags import add_server_flags, server_config_from_flags
from chimera.validation.core import ValidationCore
from chimera.validation.policy import Policy
from chimera.validation.service import SERVICE_NAME, ValidationServicer
from chimera.v1 import validation_pb2_grpc

__all__ = ["build_server", "main", "parse_args"]

DEFAULT_PORT = 50053
ENV_PREFIX = "LAYER3_"


def parse_args(argv: Sequence[str]) -> tuple[ServerConfig, Path | None]:
    """ServerConfig (environment, then flags) and the policy file path."""
    parser = argparse.ArgumentParser(prog="validation-server", description=__doc__.splitlines()[0])
    add_server_flags(parser, DEFAULT_PORT)
    parser.add_argument(
        "--policy", type=Path, help="policy JSON (default: the layer's policy.json)"
    )
    args = parser.parse_args(list(argv))
    config = server_config_from_flags(parser, args, ENV_PREFIX, ServerConfig(port=DEFAULT_PORT))
    return config, args.policy


def build_server(
    server_config: ServerConfig, policy: Policy, core: ValidationCore | None = None
) -> ChimeraServer:
    """The validation server (not started)."""
    metrics = MetricsRegistry()
    servicer = ValidationServicer(policy, core or ValidationCore.load(), metrics=metrics)
    return ChimeraServer(
        server_config,
        [
            ServiceRegistration(
                validation_pb2_grpc.add_ValidationServiceServicer_to_server, servicer, SERVICE_NAME
            )
        ],
        metrics=metrics,
    )


def main(argv: Sequence[str] | None = None) -> int:
    server_config, policy_path = parse_args(sys.argv[1:] if argv is None else argv)
    return serve(build_server(server_config, Policy.load(policy_path)))


if __name__ == "__main__":
    sys.exit(main())
