"""chimera.framework.flags: the server flags every layer's ``main`` shares."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from chimera.framework import ServerConfig
from chimera.framework.flags import add_server_flags, server_config_from_flags

PREFIX = "CHIMERA_FLAGS_TEST_"


def parse(argv: list[str], check: Callable[[], None] | None = None) -> ServerConfig:
    parser = argparse.ArgumentParser(prog="test-server")
    add_server_flags(parser, 6100)
    parser.add_argument("--extra", type=int, default=1)
    args = parser.parse_args(argv)
    return server_config_from_flags(parser, args, PREFIX, ServerConfig(port=6100), check)


def test_defaults_then_environment_then_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse([])
    assert (config.host, config.port, config.metrics_port, config.max_workers) == (
        "127.0.0.1",
        6100,
        0,
        8,
    )
    monkeypatch.setenv(PREFIX + "PORT", "6200")
    monkeypatch.setenv(PREFIX + "MAX_WORKERS", "4")
    config = parse(["--max-workers", "3", "--host", "::1"])
    assert (config.port, config.max_workers, config.bind_address) == (6200, 3, "[::1]:6200")


@pytest.mark.parametrize("word", ["off", " None ", "DISABLED"])
def test_metrics_port_can_be_switched_off(word: str) -> None:
    assert parse(["--metrics-port", word]).metrics_port is None
    assert parse(["--metrics-port", "9100"]).metrics_port == 9100


def test_rejected_values_are_usage_errors_naming_the_field(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(["--port", "70000"])
    assert exit_.value.code == 2
    assert "port" in capsys.readouterr().err


def test_layer_check_runs_before_server_values_are_applied(
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[str] = []
    parse(["--port", "1"], lambda: seen.append("checked"))
    assert seen == ["checked"]

    def reject() -> None:
        raise SystemExit("layer flag wrong")

    with pytest.raises(SystemExit, match="layer flag wrong"):
        parse(["--port", "70000"], reject)  # the layer's error wins over the port's


def test_a_metrics_port_that_is_not_a_number_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse(["--metrics-port", "abc"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--metrics-port: 'abc' is neither a port number nor 'off'" in err
    assert "Traceback" not in err
