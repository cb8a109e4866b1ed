"""The genome store against SQLite and a real PostgreSQL server: the same tests for both,
and the service on a PostgreSQL store."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from chimera.genetics.backends import open_backend
from chimera.genetics.main import Options, build_server
from chimera.optim.bandit import BanditState, choose, new_bandit, update
from chimera.genetics.schema import SCHEMA_VERSION
from chimera.genetics.store import Deployment, GenomeStore, NewGenome, StoreConflict, migrate
from pg_server import fresh_database, postgres_url
from service_support import LOOPBACK, SIZE, Stub, advance, start

_names = itertools.count()


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    with postgres_url() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "run" / "genomes.sqlite")
    server = request.getfixturevalue("pg_server")
    return fresh_database(server, f"store_{next(_names)}")


@pytest.fixture
def store(target: str) -> Iterator[GenomeStore]:
    with GenomeStore.open(target) as s:
        yield s


SETTINGS = {"bounds": [["a", 0, 1], ["b", -1, 1]], "population_size": 3}


def first(store: GenomeStore, agent: str = "agent-1") -> list:
    return store.commit_generation(
        agent, 0, [NewGenome((0.1 * i, -0.5)) for i in range(3)],
        parameter_names=("a", "b"), settings=SETTINGS,
    )


def test_generations_get_versions_lineage_and_fitness(store: GenomeStore) -> None:
    g0 = first(store)
    assert [r.version for r in g0] == [1, 2, 3]
    assert all(r.generation == 0 and not r.evaluated and r.parent_ids == () for r in g0)
    children = [
        NewGenome((0.5, 0.5), parent_ids=(g0[2].id, g0[0].id), mutation_rate=0.2, crossover_method=4),
        NewGenome((0.3, 0.25), parent_ids=(g0[1].id,), mutation_rate=0.2, hyperparameters={"t": 0.7}),
    ]
    g1 = store.commit_generation(
        "agent-1", 1, children, parameter_names=("a", "b"),
        settings={**SETTINGS, "population_size": 2}, fitness={g0[0].id: 0.25, g0[2].id: 0.75},
    )
    assert [r.version for r in g1] == [4, 5]
    got = store.get(g1[0].id)
    assert got == g1[0]
    assert got.parent_ids == (g0[2].id, g0[0].id) and got.crossover_method == 4
    assert store.get(g1[1].id).hyperparameters == {"t": 0.7}
    assert store.get(g0[2].id).fitness == 0.75 and store.get(g0[1].id).fitness is None
    assert store.best("agent-1").id == g0[2].id
    assert store.evaluated_count("agent-1") == 2
    assert store.generations("agent-1") == [(0, 3), (1, 2)]
    agent = store.agent("agent-1")
    assert (agent.generation, agent.next_version, agent.settings["population_size"]) == (1, 6, 2)
    assert [r.id for r in store.population("agent-1", 0)] == [r.id for r in g0]


def test_history_is_newest_first_and_pages(store: GenomeStore) -> None:
    g0 = first(store)
    store.commit_generation(
        "agent-1", 1, [NewGenome((0.9, 0.9))], parameter_names=("a", "b"), settings=SETTINGS,
        fitness={g0[1].id: 0.5},
    )
    assert [r.version for r in store.history("agent-1")] == [4, 3, 2, 1]
    assert [r.version for r in store.history("agent-1", limit=2)] == [4, 3]
    assert [r.version for r in store.history("agent-1", before_version=3)] == [2, 1]
    assert len(store.history("agent-1", before_version=2**64 - 1)) == 4  # uint64 max: all
    assert [r.version for r in store.history("agent-1", evaluated_only=True)] == [2]
    assert store.history("nobody") == [] and store.get("g-missing") is None


def test_a_generation_is_stored_once_and_in_order(store: GenomeStore) -> None:
    first(store)
    with pytest.raises(StoreConflict):
        first(store)  # generation 0 again
    with pytest.raises(StoreConflict, match="generation 0, cannot store generation 2"):
        store.commit_generation("agent-1", 2, [], parameter_names=(), settings=SETTINGS)
    with pytest.raises(StoreConflict, match="not a genome of agent"):
        store.commit_generation(
            "agent-1", 1, [NewGenome((0.0, 0.0))], parameter_names=("a", "b"),
            settings=SETTINGS, fitness={"g-elsewhere": 1.0},
        )
    # The refused writes left nothing behind.
    assert store.generations("agent-1") == [(0, 3)]
    assert store.agent("agent-1").next_version == 4


def test_a_failure_mid_generation_rolls_everything_back(store: GenomeStore) -> None:
    g0 = first(store)

    def genomes() -> Iterator[NewGenome]:
        yield NewGenome((0.5, 0.5))
        raise RuntimeError("breeding failed half way")

    with pytest.raises(RuntimeError):
        store.commit_generation(
            "agent-1", 1, genomes(), parameter_names=("a", "b"), settings=SETTINGS,
            fitness={g0[0].id: 1.0},
        )
    assert store.generations("agent-1") == [(0, 3)]
    assert store.get(g0[0].id).fitness is None
    assert [r.version for r in store.history("agent-1")] == [3, 2, 1]


def test_deployments_and_bandit_state(store: GenomeStore) -> None:
    g0 = first(store)
    store.record_deployment(Deployment("packer", 2, "agent-1", g0[1].id, 1, 100.0))
    store.record_deployment(Deployment("packer", 3, "agent-1", g0[2].id, 2, 200.0))
    assert [(d.version, d.replaced_version) for d in store.deployments("agent-1")] == [(3, 2), (2, 1)]
    with pytest.raises(StoreConflict):
        store.record_deployment(Deployment("packer", 3, "agent-1", g0[2].id, 2, 300.0))
    # The engine's bandit state (chimera.optim.bandit), one blob per problem family.
    assert store.load_bandit("sphere/d10") is None
    state = update(new_bandit(["cma_es", "snes", "de"]), "snes", 0.25)
    store.save_bandit("sphere/d10", state.to_json())
    state = update(state, "cma_es", 0.75)
    store.save_bandit("sphere/d10", state.to_json())
    store.save_bandit("rastrigin/d100", new_bandit(["ga"]).to_json())
    restored = BanditState.from_json(store.load_bandit("sphere/d10"))
    assert restored == state and choose(restored)[0] == "de"  # the untried arm


def test_reopening_keeps_everything_and_migrations_run_once(target: str) -> None:
    with GenomeStore.open(target) as store:
        ids = [r.id for r in first(store)]
        assert store.schema_version == SCHEMA_VERSION
    with GenomeStore.open(target) as store:
        assert [r.id for r in store.population("agent-1", 0)] == ids
        assert store.schema_version == SCHEMA_VERSION


def test_an_old_schema_is_migrated_with_its_data(target: str) -> None:
    backend = open_backend(target)
    assert migrate(backend, target=1) == 1
    with backend.transaction() as tx:
        tx.run("INSERT INTO agents VALUES ('old', 1, -1, '{}')")
    backend.close()
    with GenomeStore.open(target) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.agent("old").settings == {}
        store.save_bandit("f", "{}")  # a table of migration 2


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "genomes.sqlite"
    GenomeStore.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="schema version"):
        GenomeStore.open(path)


def test_sqlite_uses_wal_under_the_run_directory(tmp_path: Path) -> None:
    path = tmp_path / "run" / "nested" / "genomes.sqlite"
    with GenomeStore.open(f"sqlite://{path}") as store:
        first(store)
    assert path.exists()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_service_runs_on_postgresql(pg_server: str) -> None:
    """``--store postgresql://...``: RunGeneration stores into the server."""
    url = fresh_database(pg_server, "service")
    with build_server(LOOPBACK, Options(store=url)) as server, grpc.insecure_channel(server.target) as channel:
        stub = Stub(channel)
        first_generation = start(stub, "pg-agent", population_size=SIZE, seed=7)
        second = advance(stub, "pg-agent", list(first_generation.population), seed=7)
    assert second.generation == 1
    with GenomeStore.open(url) as store:
        assert store.generations("pg-agent") == [(0, SIZE), (1, SIZE)]
        assert store.best("pg-agent").id == second.best.id
        assert store.evaluated_count("pg-agent") == SIZE
