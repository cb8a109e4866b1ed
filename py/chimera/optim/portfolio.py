"""The bandit driving the strategy portfolio on one problem.

Each arm is a named (strategy, config) pair; every arm keeps its own state, so
a pulled arm resumes where it stopped. A pull runs `slice_generations` under
one `lax.scan` (`loop.advance`); its reward is the relative improvement of the
overall best fitness per evaluation (`bandit.improvement_reward`). The bandit
state passed in (e.g. loaded from layer 7's store) carries what earlier
problems taught; the updated one comes back with the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Optional

import jax

from chimera.optim import bandit, cmaes, de, ga, loop, snes
from chimera.optim.space import Space

ArmFactory = Callable[[Space], tuple[loop.Strategy, Any]]
SliceRunner = Callable[[loop.Strategy, Any, jax.Array, Any, int], Any]

DEFAULT_ARMS: Mapping[str, ArmFactory] = {
    "cmaes-ipop": lambda space: (cmaes.STRATEGY, cmaes.CMAConfig(space, restarts="ipop")),
    "cmaes-bipop": lambda space: (cmaes.STRATEGY, cmaes.CMAConfig(space, restarts="bipop")),
    "snes": lambda space: (snes.STRATEGY, snes.SNESConfig(space)),
    "de-rand1bin": lambda space: (de.STRATEGY, de.DEConfig(space, pop_size=max(4, 4 * space.dim))),
    "ga-blend": lambda space: (ga.STRATEGY, ga.GAConfig(space, pop_size=64, crossover="blend")),
    "ga-self-adaptive": lambda space: (ga.STRATEGY, ga.GAConfig(space, pop_size=64, self_adaptive=True)),
}


class Pull(NamedTuple):
    arm: str
    reason: str
    reward: float
    best: float
    evaluations: int


class PortfolioResult(NamedTuple):
    best_x: Any
    best_f: float
    evaluations: int
    pulls: list[Pull]
    bandit: bandit.BanditState


def run_portfolio(
    key: jax.Array,
    space: Space,
    objective: loop.Objective,
    pulls: int,
    slice_generations: int = 20,
    state: Optional[bandit.BanditState] = None,
    arms: Mapping[str, ArmFactory] = DEFAULT_ARMS,
    reference_evaluations: int = 200,
    on_pull: Optional[Callable[[Pull], None]] = None,
    advance: Optional[SliceRunner] = None,
) -> PortfolioResult:
    """`pulls` bandit rounds of `slice_generations` generations each.

    advance(strategy, arm_state, key, config, generations) -> arm_state runs
    one slice (None: `loop.advance` on the JAX `objective`; `host.Slices`
    drives a host objective and ends the rounds early when its budget is
    spent)."""
    if pulls < 1:
        raise ValueError(f"pulls: must be at least 1, got {pulls}")
    if slice_generations < 1:
        raise ValueError(f"slice_generations: must be at least 1, got {slice_generations}")
    state = state if state is not None else bandit.new_bandit(list(arms))
    unknown = [a for a in state.arms if a not in arms]
    if unknown:
        raise ValueError(f"arms: bandit state names unknown arms {unknown}")
    configured = {name: arms[name](space) for name in state.arms}
    arm_states: dict[str, Any] = {}
    best_f, best_x, spent = math.inf, None, 0
    history: list[Pull] = []
    for pull_key in jax.random.split(key, pulls):
        arm, reason = bandit.choose(state)
        strategy, config = configured[arm]
        init_key, run_key = jax.random.split(pull_key)
        arm_state = arm_states.get(arm)
        if arm_state is None:
            arm_state = strategy.init(init_key, config)
        before_evals = int(arm_state.evaluations)
        if advance is None:
            arm_state, _ = loop.advance(strategy, arm_state, run_key, config, objective, slice_generations)
        else:
            arm_state = advance(strategy, arm_state, run_key, config, slice_generations)
        arm_states[arm] = arm_state
        used = int(arm_state.evaluations) - before_evals
        if used == 0:  # the runner's budget ended before a generation was told
            break
        spent += used
        arm_best = float(arm_state.best_f)
        reward = bandit.improvement_reward(best_f, arm_best, used, reference_evaluations)
        if arm_best < best_f:
            best_f, best_x = arm_best, arm_state.best_x
        state = bandit.update(state, arm, reward)
        record = Pull(arm, reason, reward, best_f, spent)
        history.append(record)
        if on_pull is not None:
            on_pull(record)
        if getattr(advance, "exhausted", False):
            break
    return PortfolioResult(best_x, best_f, spent, history, state)
