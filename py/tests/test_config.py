from __future__ import annotations

import math

import pytest

from chimera.framework import MIB, ServerConfig


def test_defaults_bind_loopback_on_a_free_port() -> None:
    config = ServerConfig()
    assert config.host == "127.0.0.1"
    assert config.port == 0
    assert config.metrics_port == 0
    assert config.max_message_bytes == 4 * MIB
    assert config.bind_address == "127.0.0.1:0"
    assert ServerConfig(host="::1", port=5).bind_address == "[::1]:5"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("host", ""),
        ("port", -1),
        ("port", 65536),
        ("port", True),
        ("port", 1.5),
        ("metrics_port", 70000),
        ("max_workers", 0),
        ("max_concurrent_rpcs", 0),
        ("grace_seconds", -1.0),
        ("grace_seconds", math.nan),
        ("max_message_bytes", 0),
        ("default_deadline_seconds", 0),
        ("default_deadline_seconds", math.inf),
        ("default_stream_deadline_seconds", -5),
        ("reflection", "yes"),
    ],
)
def test_bad_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"ServerConfig\.{field} "):
        ServerConfig(**{field: value})


def test_none_disables_optional_settings() -> None:
    config = ServerConfig(metrics_port=None, default_deadline_seconds=None)
    assert config.metrics_port is None
    assert config.default_deadline_seconds is None


def test_from_env_overrides_base() -> None:
    env = {
        "L4_PORT": "50054",
        "L4_METRICS_PORT": "off",
        "L4_GRACE_SECONDS": "2.5",
        "L4_REFLECTION": "false",
        "OTHER_PORT": "1",
    }
    config = ServerConfig.from_env("L4_", env, base=ServerConfig(max_workers=3))
    assert config.port == 50054
    assert config.metrics_port is None
    assert config.grace_seconds == 2.5
    assert config.reflection is False
    assert config.max_workers == 3


def test_from_env_rejects_bad_values_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="L4_PORT"):
        ServerConfig.from_env("L4_", {"L4_PORT": "fifty"})
    with pytest.raises(ValueError, match=r"ServerConfig\.port"):
        ServerConfig.from_env("L4_", {"L4_PORT": "99999"})
