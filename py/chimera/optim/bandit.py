"""UCB1 hyper-heuristic: which (strategy, settings) arm to run next.

The state is a plain dataclass of lists (JSON via to_json/from_json) so layer
7's genome store can persist it and reuse it across problems. Rewards are in
[0, 1]: `improvement_reward` turns a slice's improvement of the best fitness
into relative improvement per evaluation, scaled by a reference budget.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class BanditState:
    """arms: names; pulls and reward_sums per arm; exploration: UCB1's c."""

    arms: tuple[str, ...]
    pulls: tuple[int, ...]
    reward_sums: tuple[float, ...]
    exploration: float = math.sqrt(2.0)

    def __post_init__(self) -> None:
        if not self.arms:
            raise ValueError("arms: at least one arm is required")
        if len(set(self.arms)) != len(self.arms):
            raise ValueError("arms: names must be unique")
        if not len(self.arms) == len(self.pulls) == len(self.reward_sums):
            raise ValueError("pulls/reward_sums: one entry per arm")
        if any(p < 0 for p in self.pulls) or any(not math.isfinite(r) for r in self.reward_sums):
            raise ValueError("pulls/reward_sums: must be non-negative counts and finite sums")

    @property
    def total_pulls(self) -> int:
        return sum(self.pulls)

    def mean(self, arm: str) -> float:
        i = self.arms.index(arm)
        return self.reward_sums[i] / self.pulls[i] if self.pulls[i] else 0.0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "BanditState":
        data = json.loads(text)
        return cls(
            arms=tuple(data["arms"]),
            pulls=tuple(int(p) for p in data["pulls"]),
            reward_sums=tuple(float(r) for r in data["reward_sums"]),
            exploration=float(data.get("exploration", math.sqrt(2.0))),
        )


def new_bandit(arms: Sequence[str], exploration: float = math.sqrt(2.0)) -> BanditState:
    return BanditState(tuple(arms), (0,) * len(arms), (0.0,) * len(arms), exploration)


def ucb_scores(state: BanditState) -> list[float]:
    """Mean reward + c sqrt(ln N / n); an untried arm scores +inf."""
    total = max(state.total_pulls, 1)
    return [
        math.inf if n == 0 else s / n + state.exploration * math.sqrt(math.log(total) / n)
        for n, s in zip(state.pulls, state.reward_sums)
    ]


def choose(state: BanditState) -> tuple[str, str]:
    """The arm to pull next (ties: first listed) and a sentence saying why."""
    scores = ucb_scores(state)
    best = max(range(len(scores)), key=lambda i: (scores[i], -i))
    arm = state.arms[best]
    if state.pulls[best] == 0:
        return arm, f"{arm}: not tried yet"
    return arm, (
        f"{arm}: highest UCB1 score {scores[best]:.4f} "
        f"(mean reward {state.mean(arm):.4f} over {state.pulls[best]} of {state.total_pulls} pulls)"
    )


def exploit(state: BanditState) -> tuple[str, str]:
    """The arm of highest mean reward over the arms tried (ties: first listed)
    and a sentence saying why: the choice once the statistics are learnt and
    the budget is committed, without UCB1's exploration bonus."""
    tried = [i for i, n in enumerate(state.pulls) if n > 0]
    if not tried:
        raise ValueError("state: no arm has been pulled, so no mean reward to exploit")
    best = max(tried, key=lambda i: (state.reward_sums[i] / state.pulls[i], -i))
    arm = state.arms[best]
    return arm, f"{arm}: highest mean reward {state.mean(arm):.4f} over {state.pulls[best]} of {state.total_pulls} pulls"


def update(state: BanditState, arm: str, reward: float) -> BanditState:
    if arm not in state.arms:
        raise ValueError(f"arm: unknown arm {arm!r}")
    if not (math.isfinite(reward) and 0.0 <= reward <= 1.0):
        raise ValueError(f"reward: must be in [0, 1], got {reward}")
    i = state.arms.index(arm)
    pulls = list(state.pulls)
    sums = list(state.reward_sums)
    pulls[i] += 1
    sums[i] += reward
    return dataclasses.replace(state, pulls=tuple(pulls), reward_sums=tuple(sums))


def improvement_reward(before: float, after: float, evaluations: int, reference_evaluations: int) -> float:
    """Relative improvement of the best fitness per evaluation, in [0, 1].

    (before - after) / |before| is the fraction of the way to zero gained
    (capped at 1; before=inf counts as a full gain for any finite after); it is
    scaled by reference_evaluations / evaluations so an arm that spent more of
    the budget for the same gain scores lower.
    """
    if evaluations <= 0:
        raise ValueError(f"evaluations: must be positive, got {evaluations}")
    if not math.isfinite(after) or after >= before:
        return 0.0
    gain = 1.0 if not math.isfinite(before) else min(1.0, (before - after) / max(abs(before), 1e-300))
    return min(1.0, gain * reference_evaluations / evaluations)
