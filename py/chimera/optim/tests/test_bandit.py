"""UCB1 prefers the better arm; JSON round trip; portfolio on a real problem."""

import random

import jax
import pytest

from chimera.optim import bandit, portfolio
from chimera.optim.objectives import sphere
from chimera.optim.space import Space


def test_ucb1_prefers_the_better_arm():
    rng = random.Random(0)
    means = {"poor": 0.2, "good": 0.7, "fair": 0.4}
    state = bandit.new_bandit(list(means))
    for _ in range(400):
        arm, _ = bandit.choose(state)
        state = bandit.update(state, arm, float(rng.random() < means[arm]))
    counts = dict(zip(state.arms, state.pulls))
    assert counts["good"] > 0.6 * 400
    assert counts["good"] > counts["fair"] > 0 and counts["poor"] > 0


def test_state_round_trips_through_json_and_rejects_bad_input():
    state = bandit.update(bandit.new_bandit(["a", "b"]), "b", 0.5)
    assert bandit.BanditState.from_json(state.to_json()) == state
    arm, reason = bandit.choose(state)
    assert arm == "a" and "not tried" in reason
    with pytest.raises(ValueError, match="reward"):
        bandit.update(state, "a", 1.5)
    with pytest.raises(ValueError, match="arm"):
        bandit.update(state, "c", 0.5)
    with pytest.raises(ValueError, match="arms"):
        bandit.new_bandit([])


def test_exploit_takes_the_highest_mean_without_exploring():
    state = bandit.new_bandit(["a", "b", "c"])
    with pytest.raises(ValueError, match="no arm"):
        bandit.exploit(state)
    state = bandit.update(bandit.update(state, "a", 0.3), "b", 0.6)
    state = bandit.update(state, "b", 0.2)  # b's mean 0.4 still beats a's 0.3
    arm, reason = bandit.exploit(state)
    assert arm == "b" and "0.4000" in reason
    assert bandit.choose(state)[0] == "c"  # UCB1 itself would still try the untried arm


def test_improvement_reward_is_per_evaluation():
    assert bandit.improvement_reward(10.0, 5.0, 100, 100) == pytest.approx(0.5)
    assert bandit.improvement_reward(10.0, 5.0, 200, 100) == pytest.approx(0.25)
    assert bandit.improvement_reward(10.0, 12.0, 100, 100) == 0.0
    assert bandit.improvement_reward(float("inf"), 3.0, 100, 100) == 1.0


def test_portfolio_runs_every_arm_once_then_exploits():
    arms = {name: portfolio.DEFAULT_ARMS[name] for name in ("cmaes-ipop", "ga-blend")}
    pulls = []
    result = portfolio.run_portfolio(
        jax.random.key(0), Space(dim=5), sphere, pulls=5, slice_generations=15, arms=arms, on_pull=pulls.append
    )
    assert [p.arm for p in pulls[:2]] == ["cmaes-ipop", "ga-blend"]
    assert all(p.reason for p in pulls)
    assert sum(result.bandit.pulls) == 5
    assert result.best_f == min(p.best for p in pulls) and result.best_f < 1e-2
    assert result.evaluations == pulls[-1].evaluations
