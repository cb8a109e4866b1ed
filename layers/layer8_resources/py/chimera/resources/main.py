"""``server``: runs the resources service until SIGTERM/SIGINT.

Settings come from ``LAYER8_*`` environment variables (see
``chimera.framework.ServerConfig.from_env``), then flags; the service binds
127.0.0.1:50058 unless told otherwise. The pool is this host, probed at
start (and on ``GetInventory(refresh=true)``); leases are checked on every
call and once a second between calls; rates and grant limits come
from ``--config`` (default ``layers/layer8_resources/resources.json``)::

    bazel run //layers/layer8_resources:server -- --config my_rates.json
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Sequence
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
from chimera.resources.config import ResourcesConfig
from chimera.resources.core import ResourcesCore
from chimera.resources.inventory import InventorySource, probe_host
from chimera.resources.jobs import JobQueue, Reaper
from chimera.resources.ledger import Ledger
from chimera.resources.metrics import ResourceMetrics
from chimera.resources.pool import Clock, Pool
from chimera.resources.service import SERVICE_NAME, ResourcesServicer
from chimera.v1 import resources_pb2_grpc

__all__ = ["Options", "build_server", "main", "parse_args"]

DEFAULT_PORT = 50058
ENV_PREFIX = "LAYER8_"


@dataclass(frozen=True)
class Options:
    """Layer-specific settings."""

    config: Path | None = None
    storage_path: Path = Path(".")
    #: Where the ledger of allocations and jobs lives; None = in memory only.
    state_dir: Path | None = None
    use_jax: bool = True
    #: How often leases are checked when no call arrives; None: only on calls
    #: (tests that move a fake clock and want no second thread to see it).
    reap_interval_seconds: float | None = 1.0


def parse_args(argv: Sequence[str]) -> tuple[ServerConfig, Options]:
    """ServerConfig (environment, then flags) and the layer's options."""
    parser = argparse.ArgumentParser(prog="resources-server", description=__doc__.splitlines()[0])
    add_server_flags(parser, DEFAULT_PORT)
    parser.add_argument("--config", type=Path, help="rates and grant limits JSON")
    parser.add_argument(
        "--storage-path", type=Path, default=Path("."), help="filesystem whose free space is pooled"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="directory of the allocations' and jobs' ledger; a restart on it keeps every grant",
    )
    parser.add_argument(
        "--no-jax", action="store_true", help="do not ask JAX for devices (nvidia-smi only)"
    )
    args = parser.parse_args(list(argv))

    def check() -> None:
        if not args.storage_path.is_dir():
            parser.error(f"--storage-path {args.storage_path} is not a directory")

    config = server_config_from_flags(parser, args, ENV_PREFIX, ServerConfig(port=DEFAULT_PORT), check)
    return config, Options(args.config, args.storage_path, args.state_dir, not args.no_jax)


def build_server(
    server_config: ServerConfig,
    options: Options,
    *,
    core: ResourcesCore | None = None,
    probe: InventorySource | None = None,
    clock: Clock = time.time,
) -> ChimeraServer:
    """The resources server (not started); a broken config fails here.

    ``probe`` (the host probe by default) and ``clock`` are injectable so
    tests can fix the pool and move time. The lease reaper starts once the
    server serves and stops after its drain.
    """
    core = core or ResourcesCore.load()
    settings = ResourcesConfig.load(options.config)
    probe = probe or functools.partial(probe_host, options.storage_path, use_jax=options.use_jax)
    registry = MetricsRegistry()
    metrics = ResourceMetrics(registry)
    pool = Pool(
        core, settings.rates, probe(), clock, metrics, settings.retention.ended_allocations
    )
    ledger = Ledger(options.state_dir) if options.state_dir is not None else None
    queue = JobQueue(
        pool, settings.grants, clock, metrics, settings.retention.finished_jobs,
        on_change=ledger.save if ledger is not None else None,
    )
    if ledger is not None:
        # A restart on the same state directory: the grants it held, then expiry on wall time.
        ledger.restore(pool, queue)
        queue.sync()
    servicer = ResourcesServicer(pool, queue, probe)
    registration = ServiceRegistration(
        resources_pb2_grpc.add_ResourcesServiceServicer_to_server, servicer, SERVICE_NAME
    )
    reapers = [] if options.reap_interval_seconds is None else [
        Reaper(queue, options.reap_interval_seconds)
    ]
    return ChimeraServer(
        server_config,
        [registration],
        metrics=registry,
        on_stop=StopHooks(after_drain=[r.stop for r in reapers]),
        after_start=[r.start for r in reapers],
    )


def main(argv: Sequence[str] | None = None) -> int:
    server_config, options = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        server = build_server(server_config, options)
    except (ValueError, FileNotFoundError) as exc:
        print(f"resources-server: {exc}", file=sys.stderr)
        return 2
    return serve(server)


if __name__ == "__main__":
    sys.exit(main())
