"""SIGTERM on a real server process: in-flight RPCs finish, new ones are refused, exit code 0."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from chimera.testing.v1 import echo_pb2, echo_pb2_grpc

# Beside this file both in the source tree and in Bazel runfiles (not resolved: a
# symlink in runfiles must stay there).
SCRIPT = Path(__file__).parent / "testdata" / "serve_echo.py"


def _start(grace_seconds: float) -> tuple[subprocess.Popen[str], dict[str, int]]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), str(grace_seconds)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 20)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        pytest.fail(f"serve_echo.py did not start: {proc.communicate()[1]}")
    return proc, json.loads(line)


def _started_total(metrics_port: int, method: str) -> float:
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("grpc_server_started_total") and f'grpc_method="{method}"' in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_sigterm_drains_in_flight_rpcs_then_exits_zero() -> None:
    proc, ports = _start(grace_seconds=5.0)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{ports['port']}") as channel:
            stub = echo_pb2_grpc.EchoServiceStub(channel)
            good = echo_pb2.EchoRequest(message="before", priority=1)
            assert stub.Echo(good, timeout=5).message == "before"
            slow = stub.Slow.future(echo_pb2.SlowRequest(sleep_ms=1000, message="drained"), timeout=10)
            deadline = time.monotonic() + 5
            while _started_total(ports["metrics_port"], "Slow") < 1:
                assert time.monotonic() < deadline, "the Slow RPC never started"
                time.sleep(0.02)

            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            with pytest.raises(grpc.RpcError) as refused:
                stub.Echo(good, timeout=2)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert proc.poll() is None  # still draining the Slow call

            assert slow.result().message == "drained"
        assert proc.wait(timeout=10) == 0
        _, stderr = proc.communicate(timeout=5)
        assert '"event": "signal"' in stderr and '"event": "stopped"' in stderr
        assert "Traceback" not in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
