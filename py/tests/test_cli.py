"""``chimera.cli`` against a real server: health, list, call, and its exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from echo_servicer import SERVICE

from chimera.cli import main
from chimera.framework import ChimeraServer

ECHO = f"{SERVICE}/Echo"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_health(server: ChimeraServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "health", "--target", server.target)
    assert code == 0 and json.loads(out) == {"service": "", "status": "SERVING"}
    server.set_serving(SERVICE, False)
    code, out, _ = run(capsys, "health", "--target", server.target, "--service", SERVICE)
    assert code == 1 and json.loads(out) == {"service": SERVICE, "status": "NOT_SERVING"}
    code, out, _ = run(capsys, "health", "--target", server.target, "--service", "x.Y")
    assert code == 1 and json.loads(out)["status"] == "SERVICE_UNKNOWN"


def test_list(server: ChimeraServer, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--target", server.target)
    assert code == 0
    assert out.split() == [SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]


def test_call_unary_and_stream(
    server: ChimeraServer, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(
        capsys, "call", "--target", server.target, "--method", ECHO,
        "--json", '{"message": "hi", "priority": 4}',
    )
    assert code == 0 and json.loads(out) == {"message": "hi", "index": 4}

    request = tmp_path / "count.json"
    request.write_text('{"count": 3}')
    code, out, _ = run(
        capsys, "call", "--target", server.target,
        "--method", f"/{SERVICE}/Count", "--json", f"@{request}",
    )
    assert code == 0
    assert [json.loads(line).get("index", 0) for line in out.splitlines()] == [0, 1, 2]


def test_rpc_failure_exits_1_with_code_and_details(
    server: ChimeraServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "call", "--target", server.target, "--method", ECHO, "--json", '{"message": "hi"}'
    )
    assert (code, out) == (1, "")
    assert err == "rpc failed: INVALID_ARGUMENT: field 'priority' must be >= 1 (got 0)\n"


def test_unreachable_target_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--timeout", "2", "list", "--target", "127.0.0.1:1")
    assert code == 1 and err.startswith("rpc failed: UNAVAILABLE")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", ECHO, "--json", '{"message": '], "bad JSON for chimera.testing.v1.EchoRequest"),
        (["--method", ECHO, "--json", '{"nope": 1}'], 'has no field named "nope"'),
        (["--method", ECHO, "--json", "@/no/such/file"], "cannot read /no/such/file"),
        (["--method", f"{SERVICE}/Nope"], "has no method 'Nope' (has: Count, Echo, Fail, Slow)"),
        (["--method", "chimera.testing.v1.Nope/Echo"], "has no service 'chimera.testing.v1.Nope'"),
        (["--method", "Echo"], "must look like package.Service/Method"),
    ],
)
def test_bad_usage_exits_2(
    server: ChimeraServer, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "call", "--target", server.target, *args)
    assert (code, out) == (2, "")
    assert message in err and err.count("\n") == 1


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "frobnicate")[0] == 2
    assert run(capsys, "call", "--target", "x")[0] == 2  # --method missing
    assert run(capsys, "--timeout", "0", "list", "--target", "x")[0] == 2


def test_module_entry_point_never_prints_a_traceback(server: ChimeraServer) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    result = subprocess.run(
        [sys.executable, "-m", "chimera.cli", "call", "--target", server.target,
         "--method", ECHO, "--json", "{not json"],
        capture_output=True, text=True, env=env, timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: bad JSON") and "Traceback" not in result.stderr
