"""BBOB through cocoex: a float32 CMA-ES state reaches the 1e-8 targets its
float64 sibling reaches (f1, f2, f10 at d = 10), an instance is COCO's
instance id, the portfolio rewards an arm against its reference on the same
problem, and the benchmark's CLI rejects bad input with exit 2 and one line."""

import jax

jax.config.update("jax_enable_x64", True)

import pytest  # noqa: E402

from bench.bbob import bench_bbob  # noqa: E402
from bench.bbob.bbob import load_problem  # noqa: E402

BUDGET = 10_000


@pytest.mark.parametrize("function", [1, 2, 10])
def test_float32_state_reaches_what_float64_reaches(function):
    problem = load_problem(function, 10, 1)
    for name in ("engine-bipop-float64", "engine-bipop-float32"):  # the benchmark's own solvers
        outcome = bench_bbob.run_one(bench_bbob.make_solver(name), problem, BUDGET, name)
        assert outcome.evaluations <= BUDGET and outcome.nonfinite == 0
        assert outcome.solved, f"f{function} {name}: {outcome.improvements[-1]} (evaluations, error) at the end"


def test_instance_is_cocos_instance_id():
    # cocoex's default suite would give instance 71 for index 6.
    sixth, seventy_first = load_problem(3, 2, 6), load_problem(3, 2, 71)
    assert sixth.instance == 6 and sixth.f_opt != seventy_first.f_opt


def test_portfolio_rewards_each_arm_against_the_reference_on_the_same_problem():
    portfolio = bench_bbob.HeldOutPortfolio(train_instances=tuple(range(6, 12)))
    portfolio.train(functions=(1, 15), dim=2, budget=20)
    assert set(portfolio.memory) == {("separable", 2), ("multimodal-adequate-structure", 2)}
    for bandit_state in portfolio.memory.values():  # six instances, six arms: each tried once
        assert bandit_state.pulls == (1,) * len(bandit_state.arms)
        assert bandit_state.mean(portfolio.reference) == 0.5
    for episode in portfolio.training:
        assert episode["reward"] == pytest.approx(0.5 + (episode["ecdf_area"] - episode["reference_ecdf_area"]) / 2, abs=1e-3)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dims", "7"], "--dims"),
        (["--budget", "0"], "--budget"),
        (["--budget", "20000"], "--budget"),
        (["--functions", "25"], "--functions"),
        (["--instances", "x"], "--instances"),
        (["--instances", "0"], "--instances"),
        (["--train-instances", "1001"], "--train-instances"),
        (["--solvers", "nelder-mead"], "--solvers"),
        (["--quick"], "--baseline"),
        (["--solvers", "portfolio", "--instances", "1-2", "--train-instances", "2-5"], "--train-instances"),
    ],
)
def test_bad_input_exits_2_with_one_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_bbob.main(argv)
    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench_bbob")]
    assert len(error_lines) == 1 and message in error_lines[0], error_lines
