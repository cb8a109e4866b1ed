"""Serves a MetricsRegistry at ``GET /metrics`` from a small HTTP server thread.

The standard library's ThreadingHTTPServer is enough for a scrape every few
seconds and adds no dependency. It binds the same host as the gRPC server
(loopback by default).
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from chimera.framework.metrics import MetricsRegistry

__all__ = ["CONTENT_TYPE", "MetricsHttpServer"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LOG = logging.getLogger("chimera.metrics")


class MetricsHttpServer:
    """Start with ``start()``, read ``port``, stop with ``stop()``."""

    def __init__(self, registry: MetricsRegistry, host: str, port: int) -> None:
        self._registry = registry
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(registry))
        self._httpd.daemon_threads = True
        # serve_forever polls for shutdown; a short interval keeps stop() fast.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="chimera-metrics",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join()
        self._httpd.server_close()


def _handler_for(registry: MetricsRegistry) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404, "only /metrics is served here")
                return
            body = registry.render().encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            _LOG.debug("metrics http: " + format, *args)

    return _Handler
