"""ProcessStack: a server that fails to start is named with its log's tail; all stop."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from chimera.framework.processes import ProcessStack, ServerSpec, StackError, free_ports, runfile

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
