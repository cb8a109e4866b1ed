"""Servers as real subprocesses: start, wait until SERVING, always stop.

A layer's server runs exactly as an operator runs it: its Bazel-built
``:server`` binary (a ``data`` dependency of the caller, found with
:func:`runfile`), in its own process, on a loopback port chosen up front
(:func:`free_ports`), logging to ``<run_dir>/<name>.log``. Ports are picked
before any server starts, so wiring flags can name servers still starting.

:class:`ProcessStack` runs any command that serves the standard
``grpc.health.v1.Health`` service. It is a context manager that stops every
process it started on the way out, whatever happened: SIGTERM to the process
group (the servers shut down gracefully on it), SIGKILL after a grace period.
Linux children also get SIGTERM from the kernel if this process dies without
cleaning up. The main job (tools/main) and tests that need another layer's
server (which they may only reach through its contract) both use it.

With a :class:`RestartPolicy`, :meth:`ProcessStack.supervise` watches the
started servers and restarts one that dies: the same command line (so the
same port and state directory: a layer finds its own records again), after
an exponential backoff, at most ``max_restarts`` times per server. Every
restart is appended to the server's log and recorded as a
:class:`RestartEvent`. Each launch writes ``<run_dir>/<name>.pid`` (the
server's process group), so an operator or a chaos test can find it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

__all__ = [
    "ProcessStack",
    "RestartEvent",
    "RestartPolicy",
    "ServerProcess",
    "ServerSpec",
    "StackError",
    "free_ports",
    "pid_alive",
    "runfile",
]

LOOPBACK = "127.0.0.1"
WORKSPACE = "chimera"
LOG_TAIL_LINES = 25


class StackError(RuntimeError):
    """A server could not be found, started, or did not become SERVING.

    ``headline`` is one line naming the server and what went wrong;
    ``details`` the tail of its log (may be empty); ``str()`` is both.
    """

    def __init__(self, headline: str, details: str = "") -> None:
        super().__init__(f"{headline}\n{details}" if details else headline)
        self.headline = headline
        self.details = details


@dataclass(frozen=True)
class ServerSpec:
    """How to run one server: its command line, its port and the service it reports.

    ``health_service`` is the name checked with ``grpc.health.v1.Health/Check``
    (a service name, so "SERVING" means the layer registered it, not merely
    that the port is open).
    """

    name: str
    argv: tuple[str, ...]
    port: int
    health_service: str
    metrics_port: int | None = None

    @property
    def target(self) -> str:
        return f"{LOOPBACK}:{self.port}"


@dataclass(frozen=True)
class RestartPolicy:
    """How :meth:`ProcessStack.supervise` restarts a server that died.

    ``max_restarts`` per server over the stack's life (a server that keeps
    dying is given up on, not restarted forever); the n-th restart waits
    ``min(max_backoff_s, initial_backoff_s * multiplier ** (n - 1))`` first;
    deaths are noticed within ``poll_interval_s``.
    """

    max_restarts: int = 3
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    poll_interval_s: float = 0.2

    def __post_init__(self) -> None:
        if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int):
            raise ValueError(f"RestartPolicy.max_restarts must be an integer (got {self.max_restarts!r})")
        if self.max_restarts < 0:
            raise ValueError(f"RestartPolicy.max_restarts must be >= 0 (got {self.max_restarts})")
        for name in ("initial_backoff_s", "max_backoff_s", "poll_interval_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RestartPolicy.{name} must be > 0 (got {getattr(self, name)!r})")
        if not self.multiplier >= 1:
            raise ValueError(f"RestartPolicy.multiplier must be >= 1 (got {self.multiplier!r})")

    def backoff(self, restart: int) -> float:
        """Seconds to wait before restart number ``restart`` (1, 2, ...)."""
        return min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (restart - 1))


@dataclass(frozen=True)
class RestartEvent:
    """One death of a supervised server and what the supervisor did about it.

    ``exit_status``: the dead process's status (negative: killed by that
    signal). ``restart``: which restart of this server (1, 2, ...), 0 when it
    was given up on (restarts used up). ``serving``: the new process reported
    SERVING; ``downtime_s``: from noticing the death to SERVING (or failing).
    ``error``: why the new process did not serve ("" when it did).
    """

    name: str
    exit_status: int
    restart: int
    serving: bool
    at_s: float
    downtime_s: float
    error: str = ""

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class ServerProcess:
    """A started server: its spec, process and log file.

    ``process`` is the current process: a supervised restart replaces it (same
    spec, same log file, appended), so holders of this object follow it.
    """

    spec: ServerSpec
    process: subprocess.Popen[bytes]
    log_path: Path
    #: Set by ProcessStack.stop: the exit status, and whether it was still running then.
    exit_status: int | None = None
    running_at_stop: bool | None = None
    #: Supervised restarts so far, and whether the supervisor gave up on it.
    restarts: int = 0
    given_up: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def target(self) -> str:
        return self.spec.target

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server's log ("" if it cannot be read)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports.

    All sockets are held open until every port is picked, so the ports are
    distinct; they are released before returning, so a server can bind them
    (another process could take one in between: the server then fails to
    start and says so in its log).
    """
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (signal 0; another user's process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def runfile(path: str) -> Path:
    """Absolute path of ``path`` (relative to the workspace root) in this binary's runfiles."""
    from runfiles import Runfiles  # bazel-runfiles

    rf = Runfiles.Create()
    location = rf.Rlocation(f"{WORKSPACE}/{path}") if rf is not None else None
    if not location or not os.path.exists(location):
        raise StackError(
            f"{path} is not in the runfiles (looked at {location or 'nothing: no runfiles'}); "
            "add its target to the `data` of the binary or test that runs this"
        )
    return Path(location)


# Linux's parent-death signal, set by util-linux's setpriv right before the
# server's exec. Not a preexec_fn: Python code between fork and exec in a
# process with gRPC threads can deadlock or crash the child (gRPC's fork
# handlers), while a plain fork+exec of setpriv runs none of it.
_SETPRIV = shutil.which("setpriv")


def _with_parent_death_signal(argv: Sequence[str]) -> list[str]:
    if _SETPRIV is None or not sys.platform.startswith("linux"):
        return list(argv)
    return [_SETPRIV, "--pdeathsig", "TERM", "--", *argv]


class ProcessStack:
    """Starts servers as subprocesses, waits for SERVING, stops them all on exit.

    Args:
      run_dir: where ``<name>.log`` (stdout and stderr, after a header line
        with the command) is written for each server; created if missing.
      startup_timeout: seconds a server has to report SERVING.
      grace: seconds between SIGTERM and SIGKILL when stopping.
    """

    def __init__(self, run_dir: Path, *, startup_timeout: float = 60.0, grace: float = 10.0):
        self.run_dir = Path(run_dir)
        self.startup_timeout = startup_timeout
        self.grace = grace
        self.servers: list[ServerProcess] = []
        #: Every death the supervisor saw, in order (see :meth:`supervise`).
        self.restart_events: list[RestartEvent] = []
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._started_at = time.monotonic()

    def __enter__(self) -> ProcessStack:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self, specs: Sequence[ServerSpec]) -> list[ServerProcess]:
        """Launches every spec at once, then waits until each reports SERVING.

        Raises StackError for the first server that exits or times out; the
        servers already launched keep running until :meth:`stop`.
        """
        started = [self.launch(spec) for spec in specs]
        deadline = time.monotonic() + self.startup_timeout
        for server in started:
            self.wait_serving(server, deadline)
        return started

    def launch(self, spec: ServerSpec) -> ServerProcess:
        """Starts one server (without waiting for it) in its own session and process group."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.run_dir / f"{spec.name}.log"
        process = self._popen(spec, log_path, f"# {shlex.join(spec.argv)}\n", "wb")
        server = ServerProcess(spec, process, log_path)
        self.servers.append(server)
        return server

    def _popen(
        self, spec: ServerSpec, log_path: Path, header: str, mode: str
    ) -> subprocess.Popen[bytes]:
        log: IO[bytes]
        with open(log_path, mode) as log:
            log.write(header.encode())
            log.flush()
            try:
                process = subprocess.Popen(
                    _with_parent_death_signal(spec.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise StackError(f"{spec.name}: cannot run {spec.argv[0]}: {exc}") from None
        # The process group id (start_new_session: the server leads its own group).
        (self.run_dir / f"{spec.name}.pid").write_text(f"{process.pid}\n")
        return process

    def supervise(self, policy: RestartPolicy) -> None:
        """Restarts, under ``policy``, any started server that dies before :meth:`stop`.

        Runs a watcher thread until :meth:`stop`. The thread launches the new
        processes itself and lives as long as the stack, which matters: Linux's
        parent-death signal fires when the *thread* that forked a child exits.
        """
        if self._supervisor is not None:
            raise RuntimeError("ProcessStack.supervise was already called")
        if policy.max_restarts == 0:
            return
        self._supervisor = threading.Thread(
            target=self._watch, args=(policy,), name="process-supervisor", daemon=True
        )
        self._supervisor.start()

    def _watch(self, policy: RestartPolicy) -> None:
        while not self._stopping.wait(policy.poll_interval_s):
            for server in list(self.servers):
                if server.given_up or server.running_at_stop is not None:
                    continue
                status = server.process.poll()
                if status is not None and not self._stopping.is_set():
                    self._restart(server, status, policy)

    def _restart(self, server: ServerProcess, status: int, policy: RestartPolicy) -> None:
        """One death: restart with backoff until SERVING or the restarts are used up."""
        noticed = time.monotonic()
        while True:
            if server.restarts >= policy.max_restarts:
                server.given_up = True
                self._record(server, status, 0, noticed, f"gave up after {server.restarts} restarts")
                return
            server.restarts += 1
            if self._stopping.wait(policy.backoff(server.restarts)):
                return
            try:
                server.process = self._popen(
                    server.spec,
                    server.log_path,
                    f"# supervisor: exited with status {status}; restart {server.restarts}: "
                    f"{shlex.join(server.spec.argv)}\n",
                    "ab",
                )
                self.wait_serving(server)
            except StackError as exc:
                if self._stopping.is_set():
                    return
                self._record(server, status, server.restarts, noticed, exc.headline)
                status = server.process.poll()
                if status is None:  # up but not serving in time: stop it, then try again
                    _signal_group(server.process, signal.SIGKILL)
                    status = server.process.wait()
                continue
            self._record(server, status, server.restarts, noticed, "")
            return

    def _record(
        self, server: ServerProcess, status: int, restart: int, noticed: float, error: str
    ) -> None:
        event = RestartEvent(
            name=server.name,
            exit_status=status,
            restart=restart,
            serving=not error,
            at_s=round(noticed - self._started_at, 3),
            downtime_s=round(time.monotonic() - noticed, 3),
            error=error,
        )
        self.restart_events.append(event)
        what = f"restart {restart} SERVING" if not error else error
        with contextlib.suppress(OSError), open(server.log_path, "ab") as log:
            log.write(
                f"# supervisor: {server.name} exited with status {status}; {what} "
                f"({event.downtime_s:.2f} s)\n".encode()
            )

    def wait_serving(self, server: ServerProcess, deadline: float | None = None) -> None:
        """Polls Health/Check until SERVING; StackError with the log's tail otherwise."""
        deadline = time.monotonic() + self.startup_timeout if deadline is None else deadline
        options = [
            # Retry the connection quickly while the server is still starting,
            # on a subchannel of our own (not one in a shared backoff).
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 500),
        ]
        last = "no answer yet"
        with grpc.insecure_channel(server.target, options=options) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service=server.spec.health_service)
            while True:
                status = server.process.poll()
                if status is not None:
                    raise self._failure(server, f"exited with status {status} before serving")
                if self._stopping.is_set():
                    raise StackError(f"{server.name}: the stack is stopping")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._failure(
                        server,
                        f"did not report {server.spec.health_service} SERVING on "
                        f"{server.target} within {self.startup_timeout:g} s ({last})",
                    )
                try:
                    reply = health.Check(request, timeout=min(0.5, remaining), wait_for_ready=True)
                except grpc.RpcError as exc:
                    code = exc.code() if isinstance(exc, grpc.Call) else None
                    last = f"last health check: {code.name if code else exc}"
                    time.sleep(0.05)
                    continue
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                last = f"health status {name}"
                time.sleep(0.05)

    @staticmethod
    def _failure(server: ServerProcess, what: str) -> StackError:
        tail = server.log_tail()
        shown = "\n".join(f"  | {line}" for line in tail.splitlines()) if tail else "  | (empty)"
        return StackError(
            f"{server.name} {what} (log: {server.log_path})",
            f"last lines of {server.log_path}:\n{shown}",
        )

    def stop(self) -> dict[str, int]:
        """SIGTERM to every running server, SIGKILL to those still running after ``grace``.

        Safe to call more than once; returns each server's exit status
        (negative: killed by that signal). A server that had already exited
        is marked ``running_at_stop = False``.
        """
        self._stopping.set()
        if self._supervisor is not None:
            # It returns within a poll interval, or once a restart in progress
            # sees the flag (wait_serving checks it every 50 ms).
            self._supervisor.join()
        running = []
        for server in self.servers:
            if server.running_at_stop is None:
                server.running_at_stop = server.process.poll() is None
                if server.running_at_stop:
                    running.append(server)
        # Signals go to the process group only while its leader is unreaped
        # (alive or a zombie), so the group id cannot belong to anyone else.
        for server in reversed(running):
            _signal_group(server.process, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for server in running:
            try:
                server.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(server.process, signal.SIGKILL)
                server.process.wait()
        for server in self.servers:
            server.exit_status = server.process.wait()
        return {s.name: s.process.returncode for s in self.servers}


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
