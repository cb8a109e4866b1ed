"""EvolutionService on a real loopback server: Evolve, StreamRun, ask/tell,
the bandit, operator settings for layer 7, persistence and bad input.

One search space (sphere, d=5) throughout: JAX compiles each strategy once
per shape, and each compile costs seconds here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from chimera.evolution.main import Options, build_server, main
from chimera.framework import ServerConfig
from chimera.v1 import common_pb2, evolution_pb2, evolution_pb2_grpc

LOOPBACK = ServerConfig(port=0, metrics_port=None)
CMA = evolution_pb2.EVOLUTION_ALGORITHM_CMA_ES
SNES = evolution_pb2.EVOLUTION_ALGORITHM_SNES
DE = evolution_pb2.EVOLUTION_ALGORITHM_DIFFERENTIAL_EVOLUTION
SPHERE = evolution_pb2.BENCHMARK_FUNCTION_SPHERE
Stub = evolution_pb2_grpc.EvolutionServiceStub


def problem(budget: int = 4000, problem_class: str = "", dim: int = 5, **objective: object) -> evolution_pb2.Problem:
    objective.setdefault("benchmark", SPHERE)
    return evolution_pb2.Problem(
        objective=evolution_pb2.Objective(
            name="sphere", direction=common_pb2.OPTIMIZATION_DIRECTION_MINIMIZE, **objective
        ),
        dimensions=[common_pb2.ParameterBounds(name=f"x{i}", lower=-5.0, upper=5.0) for i in range(dim)],
        evaluation_budget=budget,
        problem_class=problem_class,
    )


@pytest.fixture(scope="module")
def state_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run") / "bandit.json"


@pytest.fixture(scope="module")
def stub(state_file: Path) -> Iterator[Stub]:
    with build_server(LOOPBACK, Options(state_file=state_file)) as server:
        with grpc.insecure_channel(server.target) as channel:
            yield Stub(channel)


@pytest.fixture(scope="module")
def sphere_run(stub: Stub) -> evolution_pb2.EvolveResponse:
    return stub.Evolve(
        evolution_pb2.EvolveRequest(problem=problem(4000, "sphere-cma"), algorithm=CMA, generations=300, seed=1),
        timeout=120,
    )


def test_evolve_on_sphere_reaches_a_small_value_within_budget(sphere_run: evolution_pb2.EvolveResponse) -> None:
    r = sphere_run
    assert r.best.fitness < 1e-6, r.best
    assert len(r.best.parameters) == 5 and all(abs(x) < 1e-2 for x in r.best.parameters)
    assert math.isclose(sum(x * x for x in r.best.parameters), r.best.fitness, rel_tol=1e-3, abs_tol=1e-9)
    assert 0 < r.evaluations <= 4000
    assert [g.generation for g in r.history] == list(range(len(r.history)))
    evaluations = [g.evaluations for g in r.history]
    assert evaluations == sorted(evaluations) and evaluations[-1] == r.evaluations
    # Each generation's own best: from far away down to the optimum, not
    # monotone (a best-so-far would be), never above the generation's mean.
    best = [g.best_fitness for g in r.history]
    assert best[0] > 1e-2 and min(best) == r.best.fitness
    assert best != sorted(best, reverse=True)
    assert all(g.best_fitness <= g.mean_fitness for g in r.history)
    assert r.history[0].diversity.rms_pairwise_distance > r.history[-1].diversity.rms_pairwise_distance
    assert r.choice.algorithm == CMA and "requested" in r.choice.reason
    assert 0 < r.reward <= 1
    # The outcome went to the bandit of the problem's class.
    (cma,) = [a for a in r.choice.arms if a.algorithm == CMA]
    assert cma.pulls == 1 and math.isclose(cma.mean_reward, r.reward)


def test_a_run_that_exhausts_its_budget_stops_and_says_so(stub: Stub) -> None:
    r = stub.Evolve(
        evolution_pb2.EvolveRequest(problem=problem(100, "budget"), algorithm=CMA, generations=1000, seed=2),
        timeout=120,
    )
    assert r.budget_exhausted and "budget" in r.stop_reason
    assert 0 < r.evaluations <= 100 and len(r.history) < 1000
    done = stub.Evolve(
        evolution_pb2.EvolveRequest(problem=problem(4000, "budget"), algorithm=CMA, generations=5, seed=2),
        timeout=120,
    )
    assert not done.budget_exhausted and len(done.history) == 5 and "5 generations" in done.stop_reason


def test_stream_run_sends_the_choice_each_generation_then_the_result(stub: Stub) -> None:
    events = list(
        stub.StreamRun(
            evolution_pb2.EvolveRequest(problem=problem(4000, "stream"), algorithm=CMA, generations=20, seed=3),
            timeout=120,
        )
    )
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds == ["choice"] + ["generation"] * 20 + ["result"]
    result = events[-1].result
    assert [e.generation for e in events[1:-1]] == list(result.history)
    assert min(g.best_fitness for g in result.history) == result.best.fitness


def test_the_bandit_prefers_the_better_arm_and_says_why(stub: Stub) -> None:
    fresh = stub.SelectAlgorithm(evolution_pb2.SelectAlgorithmRequest(problem=problem(problem_class="bandit")))
    assert fresh.exploration and "never tried" in fresh.reason
    rewards = {CMA: 0.9, SNES: 0.1, DE: 0.3}
    for _ in range(3):
        for algorithm, reward in rewards.items():
            arms = stub.ReportOutcome(
                evolution_pb2.ReportOutcomeRequest(problem_class="bandit", algorithm=algorithm, reward=reward)
            ).arms
    assert {a.algorithm: (a.pulls, round(a.mean_reward, 9)) for a in arms} == {
        k: (3, v) for k, v in rewards.items()
    }
    choice = stub.SelectAlgorithm(evolution_pb2.SelectAlgorithmRequest(problem=problem(problem_class="bandit")))
    assert choice.algorithm == CMA and not choice.exploration
    assert "UCB1" in choice.reason and "cma_es" in choice.reason
    assert choice.problem_class == "bandit" and choice.hyperparameters["population_size"] >= 2
    # An unselected Evolve runs the bandit's choice and feeds it back.
    r = stub.Evolve(evolution_pb2.EvolveRequest(problem=problem(4000, "bandit"), generations=5, seed=4), timeout=120)
    assert r.choice.algorithm == CMA
    assert {a.algorithm: a.pulls for a in r.choice.arms}[CMA] == 4


def test_ask_tell_run_respects_its_budget(stub: Stub) -> None:
    pop = stub.StartRun(evolution_pb2.StartRunRequest(problem=problem(30, "asktell"), algorithm=SNES, population_size=6, seed=5))
    assert pop.generation == 0 and len(pop.members) == 6 and not pop.HasField("best")
    assert pop.diversity.mean_pairwise_distance > 0
    with pytest.raises(grpc.RpcError) as err:
        stub.Step(evolution_pb2.StepRequest(run_id=pop.run_id, fitness=[1.0] * 5))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    told = 0
    while not pop.finished:
        fitness = [sum(x * x for x in m.parameters) for m in pop.members]
        told += len(fitness)
        pop = stub.Step(evolution_pb2.StepRequest(run_id=pop.run_id, fitness=fitness))
        assert pop.best.fitness <= min(fitness) * (1 + 1e-6)  # told fitness is kept in float32
    assert told == pop.evaluations == 30 and not pop.members and "budget" in pop.stop_reason
    with pytest.raises(grpc.RpcError) as err:
        stub.Step(evolution_pb2.StepRequest(run_id=pop.run_id, fitness=[1.0] * 6))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_suggest_operators_hands_the_run_distribution_to_genetics(stub: Stub, sphere_run) -> None:
    settings = stub.SuggestOperators(evolution_pb2.SuggestOperatorsRequest(run_id=sphere_run.run_id))
    assert len(settings.search_mean) == len(settings.search_stddev) == 5
    assert all(abs(m) < 1e-2 for m in settings.search_mean)  # CMA-ES converged on the origin
    assert 0 < settings.mutation_sigma < 1e-2  # and narrowed its distribution
    assert settings.crossover_method == common_pb2.CROSSOVER_METHOD_BLEND


@pytest.mark.parametrize(
    ("best", "expected_sigma"),
    [([5.0, 4.0, 3.0, 2.0, 1.0], 0.122), ([5.0, 5.0, 5.0, 5.0, 5.0, 4.9], 0.082)],
)
def test_suggest_operators_applies_the_one_fifth_rule(stub: Stub, best: list[float], expected_sigma: float) -> None:
    settings = stub.SuggestOperators(
        evolution_pb2.SuggestOperatorsRequest(
            bounds=problem().dimensions,
            recent=[common_pb2.GenerationSummary(generation=i, best_fitness=b) for i, b in enumerate(best)],
            current=common_pb2.OperatorSettings(mutation_sigma=0.1, tournament_size=3),
            direction=common_pb2.OPTIMIZATION_DIRECTION_MINIMIZE,
        )
    )
    assert math.isclose(settings.mutation_sigma, expected_sigma) and settings.tournament_size == 3


def test_bandit_state_persists_in_the_state_file(stub: Stub, state_file: Path) -> None:
    stub.ReportOutcome(evolution_pb2.ReportOutcomeRequest(problem_class="persisted", algorithm=DE, reward=0.5))
    with build_server(LOOPBACK, Options(state_file=state_file)) as again:
        with grpc.insecure_channel(again.target) as channel:
            choice = Stub(channel).SelectAlgorithm(
                evolution_pb2.SelectAlgorithmRequest(problem=problem(problem_class="persisted"))
            )
    assert {a.algorithm: a.pulls for a in choice.arms} == {CMA: 0, SNES: 0, DE: 1}


def _bad(**changes: object) -> evolution_pb2.EvolveRequest:
    request = evolution_pb2.EvolveRequest(problem=problem(), algorithm=CMA, generations=5)
    for path, value in changes.items():
        target = request
        *parents, leaf = path.split("__")
        for p in parents:
            target = target.dimensions[0] if p == "dim0" else getattr(target, p)
        if leaf == "dimensions":
            del target.dimensions[:]
            target.dimensions.extend(value)  # type: ignore[arg-type]
        else:
            setattr(target, leaf, value)
    return request


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (_bad(problem__dim0__lower=math.inf), "problem.dimensions[0].lower"),
        (_bad(problem__dim0__upper=math.nan), "problem.dimensions[0].upper"),
        (_bad(problem__dim0__lower=5.0), "problem.dimensions[0].upper"),
        (_bad(problem__dim0__lower=-1e300), "problem.dimensions[0]"),
        (_bad(problem__dim0__lower=1.0, problem__dim0__upper=1.0 + 1e-12), "problem.dimensions[0].upper"),
        (_bad(problem__dimensions=[]), "problem.dimensions"),
        (_bad(problem__dimensions=problem(dim=201).dimensions), "problem.dimensions"),
        (_bad(problem__evaluation_budget=3), "problem.evaluation_budget"),
        (_bad(problem__evaluation_budget=2_000_000_000), "problem.evaluation_budget"),
        (_bad(generations=0), "generations"),
        (_bad(algorithm=evolution_pb2.EVOLUTION_ALGORITHM_OPENAI_ES), "algorithm"),
        (_bad(algorithm=99), "algorithm"),
        (_bad(problem__objective__benchmark=99), "problem.objective.benchmark"),
        (_bad(problem__objective__benchmark=evolution_pb2.BENCHMARK_FUNCTION_UNSPECIFIED), "problem.objective.benchmark"),
        (_bad(population_size=1), "population_size"),
        (_bad(population_size=4096, problem__dimensions=problem(dim=50).dimensions), "population_size"),
        (_bad(generations=20_000, problem__evaluation_budget=1_000_000), "generations"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_input_is_invalid_argument_naming_the_field(stub: Stub, request_, field: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.Evolve(request_, timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert f"'{field}'" in err.value.details() or field in err.value.details(), err.value.details()


def test_bad_operator_and_outcome_requests_are_invalid_argument(stub: Stub) -> None:
    cases = [
        (stub.SuggestOperators, evolution_pb2.SuggestOperatorsRequest(), "bounds"),
        (stub.SuggestOperators, evolution_pb2.SuggestOperatorsRequest(
            bounds=problem().dimensions, recent=[common_pb2.GenerationSummary()]), "direction"),
        (stub.ReportOutcome, evolution_pb2.ReportOutcomeRequest(problem_class="c", algorithm=CMA, reward=1.5), "reward"),
        (stub.ReportOutcome, evolution_pb2.ReportOutcomeRequest(problem_class="c", algorithm=7, reward=0.5), "algorithm"),
    ]
    for method, request, field in cases:
        with pytest.raises(grpc.RpcError) as err:
            method(request, timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.SuggestOperators(evolution_pb2.SuggestOperatorsRequest(run_id="nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_unreadable_state_file_is_one_message_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "bandit.json"
    broken.write_text('{"some class": {"arms": ["cma_es"]}}')
    assert main(["--port", "0", "--metrics-port", "off", "--state-file", str(broken)]) == 2
    assert "not a saved bandit state" in capsys.readouterr().err


def test_ask_tell_cma_es_maximises_what_the_caller_reports(stub: Stub) -> None:
    maximise = problem(400, "asktell-max")
    maximise.objective.direction = common_pb2.OPTIMIZATION_DIRECTION_MAXIMIZE
    maximise.objective.benchmark = evolution_pb2.BENCHMARK_FUNCTION_UNSPECIFIED  # caller-evaluated
    pop = stub.StartRun(evolution_pb2.StartRunRequest(problem=maximise, algorithm=CMA, seed=6))
    first = None
    while not pop.finished:
        fitness = [-sum((x - 1.0) ** 2 for x in m.parameters) for m in pop.members]
        first = max(fitness) if first is None else first
        pop = stub.Step(evolution_pb2.StepRequest(run_id=pop.run_id, fitness=fitness))
    assert pop.evaluations <= 400 and pop.best.fitness > max(first, -0.1)
    assert all(abs(x - 1.0) < 0.3 for x in pop.best.parameters)


def test_stream_run_refuses_bad_input_with_invalid_argument(stub: Stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        list(stub.StreamRun(_bad(problem__dim0__lower=5.0), timeout=30))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "problem.dimensions[0].upper" in err.value.details()


def test_snes_restarts_ipop_style_by_the_cores_rule(stub: Stub) -> None:
    r = stub.Evolve(
        evolution_pb2.EvolveRequest(
            problem=problem(4000, "restarts"), algorithm=SNES, population_size=6, generations=200,
            seed=7, stagnation_patience=1,
        ),
        timeout=120,
    )
    restarts = [g.diversity.restarts for g in r.history]
    assert restarts == sorted(restarts) and restarts[-1] >= 1, r.stop_reason
    evaluations = [g.evaluations for g in r.history]
    assert evaluations == sorted(evaluations) and evaluations[-1] == r.evaluations <= 4000
    assert min(g.best_fitness for g in r.history) == r.best.fitness
    # Two doublings at most (6 -> 12 -> 24), then the rule stops the run.
    assert restarts[-1] <= 2
