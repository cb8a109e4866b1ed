"""The gRPC server every layer service runs: one call to build, one to serve.

``ChimeraServer`` adds, around a layer's servicers, what every service needs:
contract validation, deadlines, error mapping, a JSON access log, Prometheus
metrics, the standard health service (per-service status) and server
reflection. Shutdown is graceful: health turns NOT_SERVING, new RPCs are
refused, in-flight RPCs get ``grace_seconds`` to finish, then metrics stop.
A layer hooks into that order with :class:`StopHooks` (layer 4 ends its KPI
streams before the drain, so it does not wait out their deadlines, and closes
its scheduler after it), and starts its background work (layer 1's collector,
layer 5's KPI subscription) once the server serves with ``after_start``.
:func:`serve` is every layer's process entry point.

Requests larger than ``max_message_bytes`` are refused by gRPC's transport
with RESOURCE_EXHAUSTED ("Received message larger than max (N vs. M)") before
any handler or interceptor runs: that is the standard code for the case, and
the message is never read into memory. Oversized *fields* within the limit are
INVALID_ARGUMENT through their ``max_len`` rules.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass
from types import FrameType
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from chimera.framework.config import ServerConfig
from chimera.framework.interceptors import default_chain
from chimera.framework.metrics import MetricsRegistry
from chimera.framework.metrics_http import MetricsHttpServer
from chimera.framework.statefile import write_atomically
from chimera.framework.validation import Validator

__all__ = ["ChimeraServer", "ServiceRegistration", "StopHooks", "serve"]

_SERVING = health_pb2.HealthCheckResponse.SERVING
_NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class ServiceRegistration:
    """A servicer and how to add it, e.g.::

    ServiceRegistration(execution_pb2_grpc.add_ExecutionServiceServicer_to_server,
                        ExecutionServicer(...), "chimera.v1.ExecutionService")
    """

    add_to_server: Callable[[Any, grpc.Server], None]
    servicer: object
    name: str


@dataclass(frozen=True)
class StopHooks:
    """What a layer does around the drain when its server stops.

    ``before_drain`` runs once health is NOT_SERVING and before in-flight RPCs
    are waited for (end long-lived streams here, or the drain waits out their
    deadlines); ``after_drain`` runs once no handler runs any more (release
    what handlers used: schedulers, stores). Each runs once, in order; a hook
    that raises is logged and the next still runs. ``after_drain`` also runs
    when the server fails to start.
    """

    before_drain: Sequence[Callable[[], None]] = ()
    after_drain: Sequence[Callable[[], None]] = ()


Registration = ServiceRegistration | tuple[Callable[[Any, grpc.Server], None], object, str]


class ChimeraServer:
    """A started-on-demand gRPC server; usable as a context manager in tests.

    ``metrics`` is the registry served on ``/metrics``; pass one in to add a
    layer's own metrics to it (it is also available as ``server.metrics``).
    ``after_start`` runs, in order, once every service is SERVING: it starts
    the background work a layer owns (stop it again in ``on_stop``). A hook
    that raises stops the server and fails ``start``.
    """

    def __init__(
        self,
        config: ServerConfig,
        services: Iterable[Registration],
        *,
        metrics: MetricsRegistry | None = None,
        logger: logging.Logger | None = None,
        on_stop: StopHooks = StopHooks(),
        after_start: Sequence[Callable[[], None]] = (),
    ) -> None:
        self.config = config
        self.metrics = metrics if metrics is not None else MetricsRegistry()
        self._log = logger or logging.getLogger("chimera.rpc")
        self._on_stop = on_stop
        self._after_start = tuple(after_start)
        self._services = tuple(_as_registration(s) for s in services)
        self._names = tuple(s.name for s in self._services)
        if len(set(self._names)) != len(self._names):
            raise ValueError(f"a service is registered twice: {list(self._names)}")
        self._validator = Validator()
        for name in self._names:
            for method in _service_descriptor(name).methods:
                self._validator.prepare(method.input_type)  # a bad contract fails here

        self._health = health.HealthServicer()
        self._executor = futures.ThreadPoolExecutor(
            config.max_workers, thread_name_prefix="chimera-rpc"
        )
        self._server = grpc.server(
            self._executor,
            interceptors=default_chain(
                validator=self._validator,
                registry=self.metrics,
                logger=self._log,
                default_deadline_seconds=config.default_deadline_seconds,
                default_stream_deadline_seconds=config.default_stream_deadline_seconds,
            ),
            options=[
                ("grpc.max_receive_message_length", config.max_message_bytes),
                ("grpc.max_send_message_length", config.max_message_bytes),
                # A second server on a busy fixed port must fail, not share it.
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        )
        for service in self._services:
            service.add_to_server(service.servicer, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self._server)
        if config.reflection:
            reflection.enable_server_reflection(
                (*self._names, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server
            )

        self._metrics_http: MetricsHttpServer | None = None
        self._port: int | None = None
        self._lock = threading.Lock()
        self._started = False
        self._stopping = False
        self._stopped = threading.Event()

    # --- lifecycle ------------------------------------------------------
    def start(self) -> ChimeraServer:
        with self._lock:
            if self._started or self._stopping:
                raise RuntimeError("a ChimeraServer can be started once")
            self._started = True
        try:
            self._bind()
        except BaseException:
            self._run_hooks("after_drain", self._on_stop.after_drain)
            raise
        self._server.start()
        if self._metrics_http is not None:
            self._metrics_http.start()
        for name in self._names:
            self._health.set(name, _SERVING)
        if self.config.port_file is not None:
            write_atomically(self.config.port_file, f"{self.port}\n")
        self._log.info(
            json.dumps(
                {
                    "event": "listening",
                    "address": self.config.bind_address,
                    "port": self.port,
                    "metrics_port": self.metrics_port,
                    "services": list(self._names),
                }
            )
        )
        try:
            for hook in self._after_start:
                hook()
        except BaseException:
            self.stop()
            raise
        return self

    def _bind(self) -> None:
        address = self.config.bind_address
        try:
            port = self._server.add_insecure_port(address)
        except RuntimeError as exc:
            raise RuntimeError(f"cannot bind gRPC server to {address}: {exc}") from None
        if not port:  # older grpcio returns 0 instead of raising
            raise RuntimeError(f"cannot bind gRPC server to {address}")
        self._port = port
        if self.config.metrics_port is not None:
            self._metrics_http = MetricsHttpServer(
                self.metrics, self.config.host, self.config.metrics_port
            )

    def _run_hooks(self, phase: str, hooks: Sequence[Callable[[], None]]) -> None:
        for hook in hooks:
            try:
                hook()
            except Exception:  # one failing hook must not keep the others from running
                self._log.exception(json.dumps({"event": "stop_hook_failed", "phase": phase}))

    def stop(self, grace: float | None = None) -> None:
        """Graceful stop; safe to call twice and from any thread. Blocks until done."""
        with self._lock:
            first = not self._stopping
            self._stopping = True
        if not first:
            self._stopped.wait()
            return
        seconds = self.config.grace_seconds if grace is None else grace
        self._health.enter_graceful_shutdown()
        self._run_hooks("before_drain", self._on_stop.before_drain)
        if self._started:
            self._server.stop(seconds).wait()
        # Handlers still running past the grace period cannot be killed (Python
        # threads); the process waits for them at exit. Queued work is dropped.
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._run_hooks("after_drain", self._on_stop.after_drain)
        if self._metrics_http is not None:
            self._metrics_http.stop()
        self._log.info(json.dumps({"event": "stopped", "port": self._port}))
        self._stopped.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Blocks until ``stop`` has finished; True if it has. Wakes for signals."""
        if timeout is not None:
            return self._stopped.wait(timeout)
        while not self._stopped.wait(0.5):
            pass
        return True

    def install_signal_handlers(
        self, signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
    ) -> None:
        """First signal: graceful stop in a background thread. Second: cancel in-flight RPCs now.

        Python only lets the main thread install handlers.
        """
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("signal handlers can only be installed from the main thread")
        for signum in signals:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            self._server.stop(None)
            return
        self._log.info(json.dumps({"event": "signal", "signal": signal.Signals(signum).name}))
        threading.Thread(target=self.stop, name="chimera-shutdown").start()

    def __enter__(self) -> ChimeraServer:
        if not self._started:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- state ----------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server has not been started")
        return self._port

    @property
    def target(self) -> str:
        """Address clients use, e.g. ``127.0.0.1:50054``."""
        return dataclasses.replace(self.config, port=self.port).bind_address

    @property
    def metrics_port(self) -> int | None:
        return None if self._metrics_http is None else self._metrics_http.port

    @property
    def services(self) -> tuple[str, ...]:
        return self._names

    def servicer(self, name: str) -> object:
        """The servicer registered under the full service name (tests reach its state)."""
        for service in self._services:
            if service.name == name:
                return service.servicer
        raise ValueError(f"unknown service {name!r}; registered: {list(self._names)}")

    def set_serving(self, service: str, serving: bool) -> None:
        """Sets a registered service's (or "" = the whole server's) health status."""
        if service != "" and service not in self._names:
            raise ValueError(f"unknown service {service!r}; registered: {list(self._names)}")
        self._health.set(service, _SERVING if serving else _NOT_SERVING)


def serve(server: ChimeraServer, *, ready: Callable[[ChimeraServer], None] | None = None) -> int:
    """Runs ``server`` until SIGTERM/SIGINT, drains it, and returns the exit status.

    Every layer's ``main.py`` ends with ``return serve(build_server(...))``.
    Call it from the main thread (signal handlers). ``ready`` is called once
    the server is serving, e.g. to publish the port picked for ``port=0``. A
    server that cannot bind its port is reported in one line (exit status 1).
    As a process entry point this also sends INFO logs (the JSON access log)
    to stderr when the application has not configured logging itself.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        server.start()
    except RuntimeError as exc:
        print(f"{sys.argv[0]}: {exc}", file=sys.stderr)
        return 1
    server.install_signal_handlers()
    if ready is not None:
        ready(server)
    server.wait()
    return 0


def _as_registration(item: Registration) -> ServiceRegistration:
    if isinstance(item, ServiceRegistration):
        return item
    add_to_server, servicer, name = item
    return ServiceRegistration(add_to_server, servicer, name)


def _service_descriptor(name: str) -> Any:
    try:
        return descriptor_pool.Default().FindServiceByName(name)
    except KeyError:
        raise ValueError(
            f"service {name!r} is not in the protobuf descriptor pool; "
            "import its generated _pb2 module and check the full name"
        ) from None
