"""EvolutionService on a real loopback server: Evolve, StreamRun, ask/tell,
the bandit (the portfolio's and the genetic algorithm's arms, its state in
layer 7's own server, a subprocess), operator settings for layer 7 and bad input.

One search space (sphere, d=5) throughout: JAX compiles each strategy once
per shape, and each compile costs seconds here.
"""

from __future__ import annotations

import math
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from chimera.binpacking import twin
from chimera.binpacking.genome import SEARCH_FIELDS
from chimera.binpacking.instances import excess_pct, generate
from chimera.evolution.main import Options, build_server, parse_args
from chimera.framework import ServerConfig
from chimera.framework.processes import ProcessStack, ServerSpec, free_ports, runfile
from chimera.v1 import common_pb2, evolution_pb2, evolution_pb2_grpc, genetics_pb2, genetics_pb2_grpc

LOOPBACK = ServerConfig(port=0, metrics_port=None)
CMA = evolution_pb2.EVOLUTION_ALGORITHM_CMA_ES
SNES = evolution_pb2.EVOLUTION_ALGORITHM_SNES
DE = evolution_pb2.EVOLUTION_ALGORITHM_DIFFERENTIAL_EVOLUTION
GA = evolution_pb2.EVOLUTION_ALGORITHM_GENETIC_ALGORITHM
MAXIMIZE = common_pb2.OPTIMIZATION_DIRECTION_MAXIMIZE
MINIMIZE = common_pb2.OPTIMIZATION_DIRECTION_MINIMIZE
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
def genetics() -> Iterator[str]:
    """Layer 7's server (a subprocess on loopback) whose genome store keeps the bandit state."""
    port, metrics = free_ports(2)
    with tempfile.TemporaryDirectory() as run_dir, ProcessStack(Path(run_dir)) as processes:
        layer7 = ServerSpec(
            "layer7",
            (
                str(runfile("layers/layer7_genetics/server")), "--port", str(port),
                "--metrics-port", str(metrics), "--run-dir", run_dir,
            ),
            port,
            "chimera.v1.GeneticsService",
            metrics,
        )
        processes.start([layer7])
        yield layer7.target


@pytest.fixture(scope="module")
def stub(genetics: str) -> Iterator[Stub]:
    with build_server(LOOPBACK, Options(genetics_target=genetics)) as server:
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
    rewards = {CMA: 0.9, SNES: 0.1, DE: 0.3, GA: 0.2}
    for _ in range(3):
        for algorithm, reward in rewards.items():
            # The portfolio's GA arm is named (GENETIC_ALGORITHM alone means layer 7's operator arms).
            arm = "genetic_algorithm" if algorithm == GA else ""
            arms = stub.ReportOutcome(
                evolution_pb2.ReportOutcomeRequest(problem_class="bandit", algorithm=algorithm, reward=reward, arm=arm)
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


def test_metrics_count_server_and_client_evaluations() -> None:
    with build_server(ServerConfig(port=0, metrics_port=0), Options()) as server:
        with grpc.insecure_channel(server.target) as channel:
            stub = Stub(channel)
            run = stub.Evolve(
                evolution_pb2.EvolveRequest(problem=problem(300, "counted"), algorithm=SNES, generations=40, seed=2),
                timeout=120,
            )
            pop = stub.StartRun(
                evolution_pb2.StartRunRequest(problem=problem(30, "counted"), algorithm=SNES, population_size=6, seed=5)
            )
            stub.Step(evolution_pb2.StepRequest(run_id=pop.run_id, fitness=[1.0] * 6))
        with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10) as page:
            exposition = page.read().decode().splitlines()
    assert 0 < run.evaluations <= 300
    assert f'evolution_evaluations_total{{source="server"}} {float(run.evaluations)}' in exposition
    assert 'evolution_evaluations_total{source="client"} 6.0' in exposition


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


def test_bandit_state_lives_in_layer_7s_genome_store(stub: Stub, genetics: str) -> None:
    stub.ReportOutcome(evolution_pb2.ReportOutcomeRequest(problem_class="persisted", algorithm=DE, reward=0.5))
    # Another layer-6 server on the same genome store sees the outcome.
    with build_server(LOOPBACK, Options(genetics_target=genetics)) as again:
        with grpc.insecure_channel(again.target) as channel:
            choice = Stub(channel).SelectAlgorithm(
                evolution_pb2.SelectAlgorithmRequest(problem=problem(problem_class="persisted"))
            )
    assert {a.algorithm: a.pulls for a in choice.arms} == {CMA: 0, SNES: 0, DE: 1, GA: 0}
    with grpc.insecure_channel(genetics) as channel:
        stored = genetics_pb2_grpc.GeneticsServiceStub(channel).GetBanditState(
            genetics_pb2.GetBanditStateRequest(problem_class="portfolio/persisted")
        )
    assert [(a.name, a.pulls, a.reward_sum) for a in stored.arms] == [
        ("cma_es", 0, 0.0), ("snes", 0, 0.0), ("differential_evolution", 1, 0.5), ("genetic_algorithm", 0, 0.0)
    ]


def binpacking_problem(dim: int = len(SEARCH_FIELDS), direction: int = MINIMIZE, **workload: object) -> evolution_pb2.Problem:
    workload.setdefault("family", "or")
    workload.setdefault("training_instances", 2)
    workload.setdefault("items", 200)
    return evolution_pb2.Problem(
        objective=evolution_pb2.Objective(name="binpacking_excess_pct", direction=direction),
        dimensions=[common_pb2.ParameterBounds(name=f"g{i}", lower=-2.0, upper=2.0) for i in range(dim)],
        binpacking=evolution_pb2.BinPackingWorkload(**workload),
    )


def test_screen_step_tells_the_twins_excess_and_needs_a_workload(stub: Stub) -> None:
    """ScreenStep: the pending members' fitness is the twin's excess on the generated instances."""
    started = stub.StartRun(
        evolution_pb2.StartRunRequest(problem=binpacking_problem(), algorithm=CMA, population_size=8, seed=3),
        timeout=120,
    )
    members = np.asarray([m.parameters for m in started.members])
    screened = stub.ScreenStep(evolution_pb2.ScreenStepRequest(run_id=started.run_id), timeout=120)
    instances = [generate("or", "training", i, items=200) for i in range(2)]
    bins = twin.bins_used(members, instances)
    expected = [excess_pct(row, [inst.l1_bound for inst in instances]) for row in bins]
    assert screened.last_generation.best_fitness == pytest.approx(min(expected))
    assert screened.last_generation.mean_fitness == pytest.approx(np.mean(expected))
    assert screened.generation == 1 and len(screened.members) == 8
    assert members.shape == (8, len(SEARCH_FIELDS))
    plain = stub.StartRun(evolution_pb2.StartRunRequest(problem=problem(), algorithm=CMA), timeout=120)
    with pytest.raises(grpc.RpcError) as err:
        stub.ScreenStep(evolution_pb2.ScreenStepRequest(run_id=plain.run_id), timeout=60)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def ga_problem(problem_class: str = "", dim: int = 8) -> evolution_pb2.Problem:
    return evolution_pb2.Problem(
        objective=evolution_pb2.Objective(name="packer_quality", direction=MAXIMIZE),
        dimensions=[common_pb2.ParameterBounds(name=f"w{i}", lower=-5.0, upper=5.0) for i in range(dim)],
        problem_class=problem_class,
    )


def select_ga(stub: Stub, problem_: evolution_pb2.Problem) -> evolution_pb2.AlgorithmChoice:
    return stub.SelectAlgorithm(evolution_pb2.SelectAlgorithmRequest(problem=problem_, algorithm=GA))


def test_genetic_algorithm_arms_follow_the_reported_outcomes(stub: Stub) -> None:
    fresh = select_ga(stub, ga_problem(dim=7))
    # The class is the objective family and the dimension bucket: d=7 and d=8 pool.
    assert fresh.problem_class == "packer_quality/d5-8" and fresh.algorithm == GA
    assert fresh.arm == "single_point/light" and fresh.exploration
    assert fresh.operators.crossover_method == common_pb2.CROSSOVER_METHOD_SINGLE_POINT
    assert fresh.operators.mutation_rate == 0.125 and len(fresh.arms) == 6
    measured = stub.ReportOutcome(
        evolution_pb2.ReportOutcomeRequest(
            problem_class=fresh.problem_class, algorithm=GA, arm=fresh.arm,
            measurement=evolution_pb2.RunMeasurement(
                first_best=0.5, final_best=0.6, evaluations=1000, direction=MAXIMIZE
            ),
        )
    )
    # (0.6 - 0.5) / 0.5 of the way, over 1000 evaluations (the reference budget).
    assert measured.arm == fresh.arm and measured.reward == pytest.approx(0.2)
    nxt = select_ga(stub, ga_problem(dim=8))
    assert nxt.arm != fresh.arm and nxt.arm == "single_point/heavy"
    assert {a.arm: a.pulls for a in nxt.arms}[fresh.arm] == 1
    # Once every arm is tried, the best mean reward wins.
    for arm in [a.arm for a in nxt.arms][1:]:
        stub.ReportOutcome(
            evolution_pb2.ReportOutcomeRequest(
                problem_class=fresh.problem_class, algorithm=GA, arm=arm,
                reward=0.9 if arm == "blend/heavy" else 0.05,
            )
        )
    best = select_ga(stub, ga_problem())
    assert best.arm == "blend/heavy" and not best.exploration and "UCB1" in best.reason
    assert best.operators.crossover_method == common_pb2.CROSSOVER_METHOD_BLEND
    # Another dimension bucket is another class, with statistics of its own.
    assert select_ga(stub, ga_problem(dim=9)).problem_class == "packer_quality/d9-16"
    assert all(a.pulls == 0 for a in select_ga(stub, ga_problem(dim=9)).arms)


def test_a_stored_state_naming_other_arms_is_refused(stub: Stub, genetics: str) -> None:
    with grpc.insecure_channel(genetics) as channel:
        genetics_pb2_grpc.GeneticsServiceStub(channel).PutBanditState(
            genetics_pb2.PutBanditStateRequest(
                state=genetics_pb2.BanditStateRecord(
                    problem_class="genetic_algorithm/odd", arms=[genetics_pb2.BanditArmTally(name="x")],
                )
            )
        )
    with pytest.raises(grpc.RpcError) as err:
        select_ga(stub, ga_problem("odd"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "names arms" in err.value.details()


def _outcome(**kw: object) -> evolution_pb2.ReportOutcomeRequest:
    kw.setdefault("problem_class", "c")
    kw.setdefault("algorithm", GA)
    kw.setdefault("arm", "blend/light")
    return evolution_pb2.ReportOutcomeRequest(**kw)


def _measured(**kw: object) -> evolution_pb2.RunMeasurement:
    kw.setdefault("evaluations", 10)
    kw.setdefault("direction", MAXIMIZE)
    return evolution_pb2.RunMeasurement(**kw)


@pytest.mark.parametrize(
    ("method", "request_", "field"),
    [
        ("SelectAlgorithm", evolution_pb2.SelectAlgorithmRequest(problem=ga_problem(), algorithm=99), "algorithm"),
        ("StartRun", evolution_pb2.StartRunRequest(problem=binpacking_problem(family="gaussian")),
         "problem.binpacking.family"),
        ("StartRun", evolution_pb2.StartRunRequest(problem=binpacking_problem(training_instances=0)),
         "problem.binpacking.training_instances"),
        ("StartRun", evolution_pb2.StartRunRequest(problem=binpacking_problem(dim=5)), "problem.dimensions"),
        ("StartRun", evolution_pb2.StartRunRequest(problem=binpacking_problem(direction=MAXIMIZE)),
         "problem.objective.direction"),
        ("ReportOutcome", _outcome(arm=""), "arm"),
        ("ReportOutcome", _outcome(arm="blend/medium"), "arm"),
        ("ReportOutcome", _outcome(arm="x" * 129), "arm"),
        ("ReportOutcome", _outcome(algorithm=CMA, arm="snes", reward=0.5), "arm"),
        ("ReportOutcome", _outcome(reward=0.5, measurement=_measured()), "reward"),
        ("ReportOutcome", _outcome(measurement=_measured(first_best=math.nan)), "measurement.first_best"),
        ("ReportOutcome", _outcome(measurement=_measured(final_best=math.inf)), "measurement.final_best"),
        ("ReportOutcome", _outcome(measurement=_measured(evaluations=0)), "measurement.evaluations"),
        ("ReportOutcome", _outcome(measurement=_measured(direction=0)), "measurement.direction"),
        ("ReportOutcome", _outcome(measurement=_measured(direction=9)), "measurement.direction"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_new_fields_are_invalid_argument_naming_them(stub: Stub, method: str, request_, field: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        getattr(stub, method)(request_, timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert f"'{field}'" in err.value.details(), err.value.details()


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


def test_an_unreachable_genetics_target_is_unavailable_naming_the_store() -> None:
    (closed,) = free_ports(1)  # nothing listens there
    with build_server(LOOPBACK, Options(genetics_target=f"127.0.0.1:{closed}")) as server:
        with grpc.insecure_channel(server.target) as channel:
            with pytest.raises(grpc.RpcError) as err:
                select_ga(Stub(channel), ga_problem())
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "genetics GetBanditState" in err.value.details()


def test_parse_args_takes_a_genetics_target() -> None:
    _, options = parse_args(["--port", "0", "--genetics-target", "127.0.0.1:50057"])
    assert options.genetics_target == "127.0.0.1:50057"
    assert parse_args(["--port", "0"])[1].genetics_target is None


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
