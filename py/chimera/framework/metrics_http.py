"""Serves a MetricsRegistry at ``GET /metrics`` with prometheus_client's WSGI app.

It binds the same host as the gRPC server (loopback by default). The library's
``start_http_server`` would serve every path and poll for shutdown only twice a
second; this serves ``/metrics`` alone and stops within 50 ms.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from chimera.framework.metrics import MetricsRegistry

__all__ = ["MetricsHttpServer"]

_Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class MetricsHttpServer:
    """Binds on construction; start with ``start()``, read ``port``, stop with ``stop()``."""

    def __init__(self, registry: MetricsRegistry, host: str, port: int) -> None:
        app = _only_metrics(make_wsgi_app(registry.collectors))
        self._httpd = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
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


def _only_metrics(app: _Wsgi) -> _Wsgi:
    def only_metrics(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"only /metrics is served here\n"]
        return app(environ, start_response)

    return only_metrics


class _QuietHandler(WSGIRequestHandler):
    """Scrapes every few seconds would flood stderr with access lines."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        pass
