"""The server entry point as a separate process: flags, gate choice, health, clean SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

import guests
from chimera.execution import main as server_main
from chimera.testing.helpers import free_port
from chimera.v1 import common_pb2, execution_pb2, execution_pb2_grpc


def start(tmp_path: Path, *flags: str) -> tuple[subprocess.Popen[str], str]:
    port_file = tmp_path / "port"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chimera.execution.main",
            "--port",
            "0",
            "--metrics-port",
            "off",
            "--port-file",
            str(port_file),
            "--tick-ms",
            "2",
            *flags,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    end = time.monotonic() + 30
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"server did not start (rc={proc.returncode}):\n{err}")
        time.sleep(0.05)
    return proc, f"127.0.0.1:{port_file.read_text().strip()}"


def stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err
    return err


def test_standalone_flag_serves_and_stops_cleanly(tmp_path: Path) -> None:
    proc, target = start(tmp_path, "--trust-unvalidated-modules", "--concurrency", "1")
    try:
        with grpc.insecure_channel(target) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="chimera.v1.ExecutionService"), timeout=5
            )
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            stub = execution_pb2_grpc.ExecutionServiceStub(channel)
            stub.DeployModule(
                execution_pb2.DeployModuleRequest(
                    module_name="ok", wasm=guests.OK_GUEST, verdict_id="none", activate=True
                ),
                timeout=10,
            )
            handle = stub.SubmitTask(execution_pb2.TaskSpec(module_name="ok"), timeout=5)
            end = time.monotonic() + 10
            while (
                stub.GetTask(execution_pb2.GetTaskRequest(task_id=handle.task_id), timeout=5).status
                != common_pb2.TASK_STATUS_SUCCEEDED
            ):
                assert time.monotonic() < end
                time.sleep(0.01)
            stream = stub.StreamKpis(execution_pb2.StreamKpisRequest())  # open during shutdown
    finally:
        err = stop(proc)
    assert "--trust-unvalidated-modules" in err and "NOT check layer-3 verdicts" in err
    assert "UNVALIDATED MODULE ADMITTED" in err
    del stream


def test_default_gate_requires_a_verdict(tmp_path: Path) -> None:
    proc, target = start(tmp_path, "--validation-target", f"127.0.0.1:{free_port()}")
    try:
        with grpc.insecure_channel(target) as channel:
            stub = execution_pb2_grpc.ExecutionServiceStub(channel)
            with pytest.raises(grpc.RpcError) as exc:
                stub.DeployModule(
                    execution_pb2.DeployModuleRequest(
                        module_name="ok", wasm=guests.OK_GUEST, verdict_id="v", activate=True
                    ),
                    timeout=20,
                )
            assert exc.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    finally:
        err = stop(proc)
    assert "UNVALIDATED" not in err and "layer4_ready" in err


def test_bad_flags_exit_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert server_main.main(["--concurrency", "0", "--trust-unvalidated-modules"]) == 2
    assert "concurrency" in capsys.readouterr().err


def test_shared_server_flags_over_layer_defaults(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LAYER4_PORT", raising=False)
    monkeypatch.delenv("LAYER4_MAX_WORKERS", raising=False)
    config, _ = server_main.parse_args([])
    # KPI streams each hold a handler thread, so layer 4 defaults to more workers.
    assert (config.host, config.port, config.max_workers) == ("127.0.0.1", 50054, 32)
    config, _ = server_main.parse_args(["--max-workers", "4", "--metrics-port", "off"])
    assert (config.max_workers, config.metrics_port) == (4, None)
    with pytest.raises(SystemExit) as exit_info:
        server_main.parse_args(["--port", "-1"])
    assert exit_info.value.code == 2
    assert "port" in capsys.readouterr().err
