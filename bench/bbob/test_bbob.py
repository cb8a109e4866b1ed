"""BBOB through cocoex: a float32 CMA-ES state reaches the 1e-8 targets its
float64 sibling reaches (f1, f2, f10 at d = 10), and the benchmark's CLI
rejects bad input with exit 2 and one line."""

import jax

jax.config.update("jax_enable_x64", True)

import pytest  # noqa: E402

from bench.bbob import bench_bbob  # noqa: E402
from bench.bbob.bbob import FINAL_PRECISION, Recorder, engine_config, load_problem  # noqa: E402
from chimera.optim import cmaes, host  # noqa: E402

BUDGET = 10_000


def _reaches(function: int, dtype: str) -> tuple[bool, int]:
    problem = load_problem(function, 10, 1)
    recorder = Recorder(problem, BUDGET)
    run = host.minimize(
        cmaes.STRATEGY, jax.random.key(function), engine_config(problem, dtype, "bipop"), recorder.rows, BUDGET,
        target=problem.f_opt + FINAL_PRECISION,
    )
    assert run.evaluations == recorder.evaluations <= BUDGET  # counted by both, never past the budget
    assert run.nonfinite == 0
    return recorder.best <= FINAL_PRECISION, recorder.evaluations


@pytest.mark.parametrize("function", [1, 2, 10])
def test_float32_state_reaches_what_float64_reaches(function):
    reached64, evals64 = _reaches(function, "float64")
    reached32, evals32 = _reaches(function, "float32")
    assert reached64, f"f{function} float64: not within 1e-8 after {evals64} evaluations"
    assert reached32, f"f{function} float32: not within 1e-8 after {evals32} evaluations"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dims", "7"], "--dims"),
        (["--budget", "0"], "--budget"),
        (["--budget", "20000"], "--budget"),
        (["--functions", "25"], "--functions"),
        (["--instances", "x"], "--instances"),
        (["--solvers", "nelder-mead"], "--solvers"),
        (["--quick"], "--baseline"),
    ],
)
def test_bad_input_exits_2_with_one_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_bbob.main(argv)
    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench_bbob")]
    assert len(error_lines) == 1 and message in error_lines[0], error_lines
