"""load.py's flags (a bad one exits 2 with one message line, before anything starts) and its slope fit."""

from __future__ import annotations

import math

import pytest

from tools.load import load


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration", "5"], "--duration must be in [10, 3600] s"),
        (["--duration", "nan"], "--duration must be in [10, 3600] s"),
        (["--users", "0"], "--users must be in [1, 64]"),
        (["--rate", "1000"], "--rate must be in [0.5, 500] per second"),
        (["--duration", "20", "--rss-interval", "5"], "--rss-interval must be in [0.2, duration/5] s"),
        (["--warmup", "1"], "--warmup must be in [0, 0.9]"),
        (["--max-rss-slope", "0"], "--max-rss-slope must be > 0"),
        (["--min-rate-fraction", "1.5"], "--min-rate-fraction must be in (0, 1]"),
        (["--seed", "-3"], "--seed must be >= 0"),
    ],
)
def test_bad_flags_exit_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert load.main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"load: {message}")
    assert "Traceback" not in err


def test_the_slope_fit_sees_growth_and_ignores_the_warm_up() -> None:
    mib = load.MIB
    # 10 MiB of warm-up growth, then flat: bounded.
    flat = [(t, (100 + min(t, 10)) * mib) for t in range(0, 120, 2)]
    assert abs(load.slope_mib_per_min(flat, 0.25)) < 1e-9
    # 1 MiB every 6 s: 10 MiB per minute, warm-up or not.
    growing = [(t, 100 * mib + t * mib // 6) for t in range(0, 120, 2)]
    assert load.slope_mib_per_min(growing, 0.25) == pytest.approx(10.0, rel=0.02)
    assert math.isnan(load.slope_mib_per_min(growing[:3], 0.5))  # too few samples to fit
