"""GeneticsService on a real loopback server: ask/tell, lineage, history, bad input."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from chimera.framework import ServerConfig
from chimera.genetics.main import Options, build_server, parse_args
from chimera.genetics.store import GenomeStore
from chimera.v1 import common_pb2, genetics_pb2
from service_support import BOUNDS, LOOPBACK, SIZE, Stub, advance, sphere_fitness, start

@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="module")
def stub(run_dir: Path) -> Iterator[Stub]:
    with build_server(LOOPBACK, Options(run_dir=run_dir)) as server:
        with grpc.insecure_channel(server.target) as channel:
            yield Stub(channel)


def test_first_generation_is_stored_within_bounds(stub: Stub, run_dir: Path) -> None:
    r = start(stub, "first", population_size=SIZE, seed=3)
    assert (r.agent_id, r.generation, len(r.population)) == ("first", 0, SIZE)
    assert not r.HasField("best") and not r.HasField("evaluated_generation")
    assert [g.version for g in r.population] == list(range(1, SIZE + 1))
    for g in r.population:
        assert all(-5 <= x <= 5 for x in g.parameters) and len(g.parameters) == 8
        assert list(g.parameter_names) == [b.name for b in BOUNDS]
        assert g.metadata.generation == 0 and not g.metadata.evaluated
        assert g.metadata.crossover_method == common_pb2.CROSSOVER_METHOD_NONE
    assert stub.GetGenome(genetics_pb2.GetGenomeRequest(genome_id=r.population[3].id)) == r.population[3]
    # The default store: a SQLite file under the run directory.
    with GenomeStore.open(run_dir / "genomes.sqlite") as store:
        assert store.generations("first") == [(0, SIZE)]


def test_metrics_count_genomes_stored_and_evaluations_received(tmp_path: Path) -> None:
    with build_server(ServerConfig(port=0, metrics_port=0), Options(run_dir=tmp_path)) as server:
        with grpc.insecure_channel(server.target) as channel:
            stub = Stub(channel)
            first = start(stub, "counted", population_size=SIZE, seed=5)
            advance(stub, "counted", list(first.population), seed=5)
        port = server.metrics_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as page:
            exposition = page.read().decode().splitlines()
    assert f"genetics_genomes_stored_total {2.0 * SIZE}" in exposition  # two generations of SIZE
    assert f"genetics_evaluations_total {float(SIZE)}" in exposition  # the first generation's fitness
    assert 'genetics_generations_total{kind="bred"} 1.0' in exposition


def test_ask_tell_improves_and_records_lineage(stub: Stub) -> None:
    r = start(stub, "sphere", population_size=SIZE, seed=11)
    initial_best = max(sphere_fitness(g) for g in r.population)
    previous = r.population
    for generation in range(1, 26):
        r = advance(stub, "sphere", list(previous), seed=11)
        assert r.generation == generation and len(r.population) == SIZE
        summary = r.evaluated_generation
        assert summary.generation == generation - 1
        assert summary.best_fitness == pytest.approx(max(sphere_fitness(g) for g in previous))
        assert summary.evaluations == SIZE * generation
        assert summary.diversity.mean_pairwise_distance > 0
        ids = {g.id for g in previous}
        for child in r.population:
            assert 1 <= len(child.metadata.parent_ids) <= 2
            assert set(child.metadata.parent_ids) <= ids
            two = len(child.metadata.parent_ids) == 2
            assert (child.metadata.crossover_method == common_pb2.CROSSOVER_METHOD_UNIFORM) == two
            assert all(-5 <= x <= 5 for x in child.parameters)
        # The elite (default 1): the best of the previous generation, copied unchanged.
        elite = max(previous, key=sphere_fitness)
        assert list(r.population[0].parameters) == list(elite.parameters)
        assert list(r.population[0].metadata.parent_ids) == [elite.id]
        previous = r.population
    assert r.operators.crossover_method == common_pb2.CROSSOVER_METHOD_UNIFORM
    assert r.best.metadata.evaluated and r.best.metadata.fitness > initial_best
    assert r.best.metadata.fitness > 0.5 * initial_best  # sphere: at least halved
    history = stub.ListGenomeHistory(genetics_pb2.ListGenomeHistoryRequest(agent_id="sphere", limit=3))
    assert [g.version for g in history.genomes] == [208, 207, 206]
    page = stub.ListGenomeHistory(
        genetics_pb2.ListGenomeHistoryRequest(agent_id="sphere", before_version=9, evaluated_only=True)
    )
    assert [g.version for g in page.genomes] == list(range(8, 0, -1))


def test_equal_seeds_and_evaluations_give_equal_populations(stub: Stub) -> None:
    a = start(stub, "twin-a", population_size=SIZE, seed=99)
    b = start(stub, "twin-b", population_size=SIZE, seed=99)
    assert [g.parameters for g in a.population] == [g.parameters for g in b.population]
    a, b = advance(stub, "twin-a", list(a.population), seed=5), advance(stub, "twin-b", list(b.population), seed=5)
    assert [g.parameters for g in a.population] == [g.parameters for g in b.population]
    c = start(stub, "other", population_size=SIZE, seed=100)
    assert [g.parameters for g in c.population] != [g.parameters for g in b.population]


def test_kpi_inputs_use_the_default_formula(stub: Stub) -> None:
    r = start(stub, "kpi", population_size=SIZE)
    evaluations = [
        genetics_pb2.GenomeEvaluation(
            genome_id=g.id,
            inputs=genetics_pb2.FitnessInputs(
                accuracy=0.9 - 0.1 * i, latency_ms=25.0, throughput_per_second=800.0, error_rate=0.05
            ),
        )
        for i, g in enumerate(r.population[:4])
    ]
    r2 = stub.RunGeneration(genetics_pb2.RunGenerationRequest(agent_id="kpi", evaluations=evaluations))
    formula = 0.4 * 0.9 + 0.3 / (1 + 25 / 100) + 0.2 * 0.8 + 0.1 * 0.95
    assert r2.best.id == r.population[0].id
    assert r2.best.metadata.fitness == pytest.approx(formula, rel=1e-12)
    assert r2.evaluated_generation.evaluations == 4
    # Unevaluated members are never selected: every parent is one of the four.
    evaluated = {g.id for g in r.population[:4]}
    assert all(set(g.metadata.parent_ids) <= evaluated for g in r2.population)


# 160 genes x 100,000 members: over the 10^7 genes a generation may have.
WIDE = [common_pb2.ParameterBounds(name=f"g{i}", lower=0, upper=1) for i in range(160)]


def rejected(stub: Stub, request: genetics_pb2.RunGenerationRequest) -> str:
    with pytest.raises(grpc.RpcError) as err:
        stub.RunGeneration(request, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    return str(err.value.details())


def new_agent(**kw: object) -> genetics_pb2.RunGenerationRequest:
    kw.setdefault("bounds", BOUNDS)
    kw.setdefault("agent_id", "bad")
    return genetics_pb2.RunGenerationRequest(**kw)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (new_agent(bounds=[]), "bounds"),
        (new_agent(bounds=[common_pb2.ParameterBounds(name="x", lower=float("nan"), upper=1)]), "bounds[0].lower"),
        (new_agent(bounds=[common_pb2.ParameterBounds(name="x", lower=0, upper=float("inf"))]), "bounds[0].upper"),
        (new_agent(bounds=[*BOUNDS[:2], common_pb2.ParameterBounds(name="x", lower=2, upper=1)]), "bounds[2]"),
        (new_agent(bounds=[BOUNDS[0], BOUNDS[0]]), "bounds[1].name"),
        (new_agent(bounds=[common_pb2.ParameterBounds(lower=0, upper=1)]), "bounds[0].name"),
        (new_agent(population_size=1), "population_size"),
        (new_agent(population_size=100_001), "population_size"),
        (new_agent(population_size=100_000, bounds=WIDE), "population_size"),
        (new_agent(operators=common_pb2.OperatorSettings(crossover_method=99)), "operators.crossover_method"),
        (new_agent(operators=common_pb2.OperatorSettings(mutation_rate=1.5)), "operators.mutation_rate"),
        (new_agent(operators=common_pb2.OperatorSettings(mutation_sigma=float("nan"))), "operators.mutation_sigma"),
        (new_agent(population_size=4, operators=common_pb2.OperatorSettings(elite_count=4)), "operators.elite_count"),
        (new_agent(operators=common_pb2.OperatorSettings(search_mean=[0.0])), "operators.search_mean"),
        (new_agent(evaluations=[genetics_pb2.GenomeEvaluation(genome_id="g-x", fitness=1)]), "evaluations[0].genome_id"),
        (new_agent(agent_id=""), "agent_id"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_first_calls_name_the_field(stub: Stub, request_: genetics_pb2.RunGenerationRequest, field: str) -> None:
    assert f"'{field}'" in rejected(stub, request_)


def test_bad_evaluations_name_the_field(stub: Stub) -> None:
    r = start(stub, "evals", population_size=SIZE)
    gid = r.population[0].id

    def call(*evaluations: genetics_pb2.GenomeEvaluation) -> str:
        return rejected(stub, genetics_pb2.RunGenerationRequest(agent_id="evals", evaluations=evaluations))

    ev = genetics_pb2.GenomeEvaluation
    assert "'evaluations'" in call()  # an empty evaluation: nothing to select from
    assert "'evaluations[0].fitness'" in call(ev(genome_id=gid, fitness=float("nan")))
    assert "'evaluations[0].fitness'" in call(ev(genome_id=gid, fitness=float("-inf")))
    assert "'evaluations[1].genome_id'" in call(ev(genome_id=gid, fitness=1), ev(genome_id=gid, fitness=2))
    assert "'evaluations[0].genome_id'" in call(ev(genome_id="g-unknown", fitness=1))
    assert "'evaluations[0].score'" in call(ev(genome_id=gid))
    bad_kpi = genetics_pb2.FitnessInputs(accuracy=2.0)
    assert "'evaluations[0].inputs.accuracy'" in call(ev(genome_id=gid, inputs=bad_kpi))
    # None of the refused calls advanced the agent.
    ok = advance(stub, "evals", list(r.population))
    assert ok.generation == 1


def test_lookups_and_preconditions(stub: Stub) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.GetGenome(genetics_pb2.GetGenomeRequest(genome_id="g-missing"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    start(stub, "unevaluated", population_size=SIZE)
    with pytest.raises(grpc.RpcError) as err:
        stub.DeployBest(genetics_pb2.DeployBestRequest(agent_id="unevaluated", module_name="packer"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert stub.ListGenomeHistory(genetics_pb2.ListGenomeHistoryRequest(agent_id="nobody")).genomes == []


def test_parse_args_defaults_and_store_choice(tmp_path: Path) -> None:
    config, options = parse_args(["--run-dir", str(tmp_path), "--port", "0"])
    assert (config.host, config.port) == ("127.0.0.1", 0)
    assert options.store_target == str(tmp_path / "genomes.sqlite")
    _, options = parse_args(["--store", "postgresql://u@/db?host=/tmp", "--execution-target", "127.0.0.1:1"])
    assert options.store_target.startswith("postgresql://") and options.execution_target == "127.0.0.1:1"
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--default-population", "0"])
    assert exit_.value.code == 2


def _bandit(**kw: object) -> genetics_pb2.BanditStateRecord:
    kw.setdefault("problem_class", "genetic_algorithm/packer/d5-8")
    kw.setdefault(
        "arms",
        [
            genetics_pb2.BanditArmTally(name="blend/light", pulls=3, reward_sum=1.25),
            genetics_pb2.BanditArmTally(name="uniform/heavy", pulls=0, reward_sum=0.0),
        ],
    )
    kw.setdefault("exploration", 1.5)
    return genetics_pb2.BanditStateRecord(**kw)


def test_bandit_state_round_trips_through_the_store(stub: Stub, run_dir: Path) -> None:
    state = _bandit()
    assert stub.PutBanditState(genetics_pb2.PutBanditStateRequest(state=state)) == state
    got = stub.GetBanditState(genetics_pb2.GetBanditStateRequest(problem_class=state.problem_class))
    assert got == state
    # Put replaces; each class is its own row of bandit_state.
    updated = _bandit(arms=[genetics_pb2.BanditArmTally(name="blend/light", pulls=4, reward_sum=2.0)])
    stub.PutBanditState(genetics_pb2.PutBanditStateRequest(state=updated))
    assert stub.GetBanditState(genetics_pb2.GetBanditStateRequest(problem_class=state.problem_class)) == updated
    with GenomeStore.open(run_dir / "genomes.sqlite") as store:
        assert '"pulls": [4]' in (store.load_bandit(state.problem_class) or "")
    with pytest.raises(grpc.RpcError) as err:
        stub.GetBanditState(genetics_pb2.GetBanditStateRequest(problem_class="never/stored"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def _arm(**kw: object) -> genetics_pb2.BanditArmTally:
    kw.setdefault("name", "a")
    return genetics_pb2.BanditArmTally(**kw)


@pytest.mark.parametrize(
    ("state", "field"),
    [
        (None, "state"),
        (_bandit(problem_class=""), "state.problem_class"),
        (_bandit(problem_class="x" * 257), "state.problem_class"),
        (_bandit(arms=[]), "state.arms"),
        (_bandit(arms=[_arm(name="")]), "state.arms[0].name"),
        (_bandit(arms=[_arm(pulls=1, reward_sum=float("nan"))]), "state.arms[0].reward_sum"),
        (_bandit(arms=[_arm(pulls=1, reward_sum=-0.5)]), "state.arms[0].reward_sum"),
        (_bandit(arms=[_arm(pulls=1, reward_sum=1.5)]), "state.arms[0].reward_sum"),
        (_bandit(arms=[_arm(), _arm()]), "state.arms[1].name"),
        (_bandit(exploration=float("inf")), "state.exploration"),
        (_bandit(exploration=101.0), "state.exploration"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_bandit_states_name_the_field(stub: Stub, state: object, field: str) -> None:
    request = genetics_pb2.PutBanditStateRequest(state=state)
    with pytest.raises(grpc.RpcError) as err:
        stub.PutBanditState(request, timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and f"'{field}'" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        stub.GetBanditState(genetics_pb2.GetBanditStateRequest(), timeout=30)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "'problem_class'" in err.value.details()


def test_a_repeated_request_gets_the_stored_answer_not_another_generation(stub: Stub, run_dir: Path) -> None:
    """RunGeneration is safe to send again (a client whose answer was lost in a restart)."""
    first = start(stub, "again", population_size=SIZE, seed=4)
    assert start(stub, "again", population_size=SIZE, seed=4) == first  # the first call, repeated
    second = advance(stub, "again", list(first.population), seed=4)
    repeated = advance(stub, "again", list(first.population), seed=4)
    assert repeated == second and repeated.generation == 1
    with GenomeStore.open(run_dir / "genomes.sqlite") as store:
        assert store.generations("again") == [(0, SIZE), (1, SIZE)]
    # The same generation scored differently is not a repeat.
    other = [
        genetics_pb2.GenomeEvaluation(genome_id=g.id, fitness=sphere_fitness(g) + 1.0)
        for g in first.population
    ]
    with pytest.raises(grpc.RpcError) as err:
        stub.RunGeneration(genetics_pb2.RunGenerationRequest(agent_id="again", evaluations=other), timeout=60)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already scored" in err.value.details()
