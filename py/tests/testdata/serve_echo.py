"""Runs the EchoService as its own process through ``chimera.framework.serve``.

Prints one JSON line {"port": ..., "metrics_port": ...} on stdout once it is
serving, then serves until SIGTERM/SIGINT and exits 0 after draining.
Usage: serve_echo.py [GRACE_SECONDS]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# echo_servicer.py sits one directory up (py/tests/); PYTHONPATH carries the rest.
sys.path.insert(0, str(Path(__file__).parent.parent))

from echo_servicer import EchoServicer, registration  # noqa: E402

from chimera.framework import ChimeraServer, ServerConfig, serve  # noqa: E402


def _announce(server: ChimeraServer) -> None:
    print(json.dumps({"port": server.port, "metrics_port": server.metrics_port}), flush=True)


def main() -> int:
    grace = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    server = ChimeraServer(ServerConfig(grace_seconds=grace), [registration(EchoServicer())])
    return serve(server, ready=_announce)


if __name__ == "__main__":
    sys.exit(main())
