"""ProcessStack: a server that fails to start is named with its log's tail; all stop;
a supervised server that dies is restarted on its port, a bounded number of times."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from chimera.framework.processes import (
    ProcessStack,
    RestartPolicy,
    ServerSpec,
    StackError,
    free_ports,
    runfile,
)
from chimera.testing.helpers import wait_until

DISCOVERY = "chimera.v1.DiscoveryService"
PLANNING = "chimera.v1.PlanningService"


def python_spec(name: str, code: str, port: int) -> ServerSpec:
    """A process that never serves gRPC (it only prints and sleeps)."""
    return ServerSpec(name, (sys.executable, "-c", code), port, "none.Service")


def test_server_exiting_at_start_is_named_with_its_log(tmp_path: Path) -> None:
    p1, p2 = free_ports(2)
    discovery = str(runfile("layers/layer1_discovery/server"))
    good = ServerSpec(
        "layer1_discovery", (discovery, "--port", str(p1), "--metrics-port", "off"), p1, DISCOVERY
    )
    bad = ServerSpec(
        "layer2_planning",
        (str(runfile("layers/layer2_planning/server")), "--port", str(p2), "--plan-retention", "0"),
        p2,
        PLANNING,
    )
    with pytest.raises(StackError) as err:
        with ProcessStack(tmp_path, startup_timeout=60, grace=10) as stack:
            stack.start([good, bad])
    headline, details = err.value.headline, err.value.details
    assert headline.startswith("layer2_planning exited with status 2 before serving")
    assert str(tmp_path / "layer2_planning.log") in headline
    assert "--plan-retention must be at least 1" in details  # the server's own message
    # Leaving the block stopped the healthy server gracefully (SIGTERM, exit 0).
    by_name = {s.name: s for s in stack.servers}
    assert by_name["layer1_discovery"].exit_status == 0
    assert by_name["layer1_discovery"].running_at_stop is True
    assert by_name["layer2_planning"].exit_status == 2
    assert by_name["layer2_planning"].running_at_stop is False


def test_server_that_never_serves_times_out_and_is_stopped(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    spec = python_spec(
        "sleeper", "import time; print('warming up', flush=True); time.sleep(600)", port
    )
    with pytest.raises(StackError) as err:
        with ProcessStack(tmp_path, startup_timeout=1.5, grace=5) as stack:
            stack.start([spec])
    assert f"sleeper did not report none.Service SERVING on 127.0.0.1:{port} within 1.5 s" in (
        err.value.headline
    )
    assert "| warming up" in err.value.details
    assert stack.servers[0].exit_status == -signal.SIGTERM


def test_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ignoring SIGTERM', flush=True); time.sleep(600)"
    )
    with ProcessStack(tmp_path, grace=0.5) as stack:
        server = stack.launch(python_spec("stubborn", code, port))
        # Wait until the handler is installed (the log's last line says so), then stop.
        for _ in range(200):
            if server.log_tail(1) == "ignoring SIGTERM":
                break
            time.sleep(0.05)
        assert stack.stop() == {"stubborn": -signal.SIGKILL}
    assert server.log_tail().splitlines()[0].startswith("# ")  # the command line header


def test_missing_binary_names_the_runfile() -> None:
    with pytest.raises(StackError, match="layers/nope/server is not in the runfiles"):
        runfile("layers/nope/server")


def test_free_ports_are_distinct() -> None:
    ports = free_ports(8)
    assert len(set(ports)) == 8 and all(0 < p < 65536 for p in ports)


def discovery_spec(port: int) -> ServerSpec:
    argv = (str(runfile("layers/layer1_discovery/server")), "--port", str(port), "--metrics-port", "off")
    return ServerSpec("layer1_discovery", argv, port, DISCOVERY)


def serving(target: str) -> bool:
    with grpc.insecure_channel(target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=DISCOVERY), timeout=5, wait_for_ready=True
        )
    return reply.status == health_pb2.HealthCheckResponse.SERVING


FAST = RestartPolicy(max_restarts=1, initial_backoff_s=0.1, poll_interval_s=0.05)


def test_a_killed_server_is_restarted_on_its_port_then_given_up_on(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    with ProcessStack(tmp_path, startup_timeout=60, grace=10) as stack:
        (server,) = stack.start([discovery_spec(port)])
        stack.supervise(FAST)
        first = server.process.pid
        assert (tmp_path / "layer1_discovery.pid").read_text() == f"{first}\n"
        os.killpg(first, signal.SIGKILL)
        wait_until(lambda: len(stack.restart_events) == 1, timeout=60, what="the first restart")
        (event,) = stack.restart_events
        assert (event.name, event.exit_status, event.restart, event.serving) == (
            "layer1_discovery", -signal.SIGKILL, 1, True
        )
        assert server.process.pid != first and server.restarts == 1
        assert (tmp_path / "layer1_discovery.pid").read_text() == f"{server.process.pid}\n"
        assert serving(f"127.0.0.1:{port}")  # the same port, answering again
        # The second death exceeds max_restarts=1: recorded, not restarted.
        os.killpg(server.process.pid, signal.SIGKILL)
        wait_until(lambda: len(stack.restart_events) == 2, timeout=60, what="the second restart")
        assert stack.restart_events[1].restart == 0 and not stack.restart_events[1].serving
        assert stack.restart_events[1].error == "gave up after 1 restarts"
        assert server.given_up and server.process.poll() == -signal.SIGKILL
    log = (tmp_path / "layer1_discovery.log").read_text()
    assert "# supervisor: exited with status -9; restart 1: " in log
    assert "restart 1 SERVING" in log and "gave up after 1 restarts" in log
    assert server.exit_status == -signal.SIGKILL and server.running_at_stop is False


def test_stop_ends_a_supervised_stack_without_restarts(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    with ProcessStack(tmp_path, startup_timeout=60, grace=10) as stack:
        (server,) = stack.start([discovery_spec(port)])
        stack.supervise(FAST)
        assert stack.stop() == {"layer1_discovery": 0}
    assert stack.restart_events == [] and server.restarts == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_restarts", -1, "max_restarts must be >= 0"),
        ("max_restarts", True, "max_restarts must be an integer"),
        ("initial_backoff_s", 0, "initial_backoff_s must be > 0"),
        ("multiplier", 0.5, "multiplier must be >= 1"),
    ],
)
def test_restart_policy_rejects_bad_settings(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RestartPolicy(**{field: value})


def test_backoff_grows_to_its_cap() -> None:
    policy = RestartPolicy(initial_backoff_s=0.5, max_backoff_s=3.0, multiplier=2.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 3.0]
