"""The evolution core's WASM module on the vectors its Rust tests also check
(UCB1 arm choice, stagnation and IPOP restarts): raw through chimera.wasm and
typed through chimera.evolution.core, which the service uses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from chimera.evolution import artifacts
from chimera.evolution.core import EvolutionCore, RestartPolicy
from chimera.optim.bandit import BanditState, choose, ucb_scores
from chimera.wasm import CoreError, CoreModule, Reader, Writer

VECTORS = json.loads(Path(artifacts.locate(artifacts.CORE_VECTORS)).read_text())
DECISIONS = ("continue", "restart", "stop")


@pytest.fixture(scope="module")
def core() -> CoreModule:
    return CoreModule.from_file(
        artifacts.locate(artifacts.CORE_WASM), ("evolution_choose_arm", "evolution_restart_rule")
    )


@pytest.fixture(scope="module")
def typed() -> EvolutionCore:
    return EvolutionCore.load()


def same(a: float, b: float | None) -> bool:
    if b is None:
        return math.isnan(a)
    return a == b or math.isclose(a, b, rel_tol=1e-12)


@pytest.mark.parametrize("case", VECTORS["bandit"], ids=lambda c: c["name"])
def test_bandit_vectors(core: CoreModule, case: dict) -> None:
    w = Writer().f64(case["c"]).u32(len(case["arms"]))
    for pulls, mean in case["arms"]:
        w.u32(pulls).f64(mean)
    if case["arm"] is None:
        with pytest.raises(CoreError) as err:
            core.call("evolution_choose_arm", w.to_bytes())
        assert err.value.details == (case["error_arm"],)
        return
    r = Reader(core.call("evolution_choose_arm", w.to_bytes()))
    assert r.u32() == case["arm"]
    assert bool(r.u8()) == case["exploration"]
    indices = [r.f64() for _ in range(r.u32())]
    assert all(same(a, b) for a, b in zip(indices, case["indices"], strict=True))
    assert r.string()
    r.finish()


@pytest.mark.parametrize("case", VECTORS["restart"], ids=lambda c: c["name"])
def test_restart_vectors(core: CoreModule, case: dict) -> None:
    p = case["policy"]
    w = Writer().u8(int(p["maximize"])).f64(p["tolerance"]).u32(p["patience"])
    w.u32(p["max_population"]).u32(case["population"]).u32(len(case["history"]))
    for value in case["history"]:
        w.f64(value)
    if case["decision"] is None:
        with pytest.raises(CoreError) as err:
            core.call("evolution_restart_rule", w.to_bytes())
        assert err.value.details == (case["error_field"],)
        return
    r = Reader(core.call("evolution_restart_rule", w.to_bytes()))
    assert DECISIONS[r.u8()] == case["decision"]
    assert r.u32() == case["stagnant_generations"]
    assert same(r.f64(), case["best"])
    assert r.u32() == case["next_population"]
    assert r.string()
    r.finish()


@pytest.mark.parametrize("case", [c for c in VECTORS["bandit"] if c["arm"] is not None], ids=lambda c: c["name"])
def test_the_engines_bandit_agrees_with_the_core(case: dict) -> None:
    """chimera.optim.bandit (the JAX engine's hyper-heuristic, pure Python) makes
    the same UCB1 choice as the Rust core on every vector."""
    state = BanditState(
        arms=tuple(f"arm{i}" for i in range(len(case["arms"]))),
        pulls=tuple(p for p, _ in case["arms"]),
        reward_sums=tuple(p * m for p, m in case["arms"]),
        exploration=case["c"],
    )
    scores = ucb_scores(state)
    assert all(same(a, b) for a, b in zip(scores, case["indices"], strict=True))
    assert choose(state)[0] == f"arm{case['arm']}"


@pytest.mark.parametrize("case", [c for c in VECTORS["bandit"] if c["arm"] is not None], ids=lambda c: c["name"])
def test_the_typed_wrapper_reads_the_same_choice(typed: EvolutionCore, case: dict) -> None:
    choice = typed.choose_arm(case["c"], [tuple(a) for a in case["arms"]])
    assert (choice.arm, choice.exploration) == (case["arm"], case["exploration"])
    assert all(same(a, b) for a, b in zip(choice.indices, case["indices"], strict=True))


@pytest.mark.parametrize("case", [c for c in VECTORS["restart"] if c["decision"] is not None], ids=lambda c: c["name"])
def test_the_typed_wrapper_reads_the_same_restart_decision(typed: EvolutionCore, case: dict) -> None:
    p = case["policy"]
    policy = RestartPolicy(bool(p["maximize"]), p["tolerance"], p["patience"], p["max_population"])
    decision = typed.restart_rule(policy, case["population"], case["history"])
    assert (decision.decision, decision.stagnant_generations, decision.next_population) == (
        case["decision"], case["stagnant_generations"], case["next_population"]
    )
