"""chaos.py's flags: a bad one exits 2 with one message line, before anything starts."""

from __future__ import annotations

import pytest

from tools.chaos import chaos


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--kill", "layer9_nothing"], "--kill: unknown layer 'layer9_nothing'"),
        (["--kill", "layer7_genetics"] * 3, "--kill: at most twice per layer"),
        (["--kill", "layer7_genetics", "--seed", "-1"], "--seed must be >= 0"),
        (["--kill", "layer7_genetics", "--kill-window", "0"], "--kill-window must be in (0, 600]"),
        (["--kill", "layer7_genetics", "--timeout", "nan"], "--timeout must be in (0, 3600]"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert chaos.main(argv) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"chaos: {message}" + err.split(message, 1)[1].rstrip("\n")]
    assert "Traceback" not in err


def test_missing_kill_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        chaos.main([])
    assert exc.value.code == 2
    assert "the following arguments are required: --kill" in capsys.readouterr().err


def test_kill_points_replay_from_the_seed() -> None:
    first = chaos.plan_kills(["layer4_execution", "layer7_genetics"], 5, 20.0)
    again = chaos.plan_kills(["layer4_execution", "layer7_genetics"], 5, 20.0)
    assert [k.delay_s for k in first] == [k.delay_s for k in again]
    assert all(0.0 <= k.delay_s <= 20.0 for k in first)
    assert [k.delay_s for k in chaos.plan_kills(["layer4_execution"], 6, 20.0)] != [
        first[0].delay_s
    ]
