"""kill -9 in the middle of writing a generation: nothing acknowledged is lost,
no partial generation remains (SQLite and a real PostgreSQL server).

A child process writes generations of WRITE_SIZE genomes in a loop, each
with the fitness of the previous generation, and prints ``ACK g`` once
``commit_generation`` has returned. From generation KILL_AT on, it prints
``HALF g`` after inserting half of the genomes and keeps the transaction open;
the test then SIGKILLs it, so the kill always lands inside a transaction that
has written rows.
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chimera.genetics.store import GenomeStore, NewGenome
from pg_server import fresh_database, postgres_url

WRITE_SIZE = 400
KILL_AT = 3

CHILD = r"""
import sys, time
from chimera.genetics.store import GenomeStore, NewGenome

target, size, kill_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
store = GenomeStore.open(target)

def genomes(g):
    for i in range(size):
        if i == size // 2 and g >= kill_at:
            print(f"HALF {g}", flush=True)
            time.sleep(60)
        yield NewGenome((float(g), float(i)))

previous = []
for g in range(1000):
    fitness = {r.id: float(g) for r in previous}
    previous = store.commit_generation(
        "agent", g, genomes(g), parameter_names=("g", "i"), settings={"g": g}, fitness=fitness
    )
    print(f"ACK {g}", flush=True)
"""

_names = itertools.count()


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    with postgres_url() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "genomes.sqlite")
    return fresh_database(request.getfixturevalue("pg_server"), f"crash_{next(_names)}")


def kill_mid_generation(target: str) -> list[int]:
    """Runs the writer until it is half way through generation KILL_AT, then
    SIGKILLs it; returns the generations it acknowledged."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, target, str(WRITE_SIZE), str(KILL_AT)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    acked = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            word, g = line.split()
            if word == "ACK":
                acked.append(int(g))
            elif word == "HALF":
                assert int(g) == KILL_AT
                os.kill(child.pid, signal.SIGKILL)
                break
        else:
            raise AssertionError(f"writer exited early: {child.wait()} {child.stderr.read()}")  # type: ignore[union-attr]
    finally:
        child.kill()
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    return acked


def test_kill_9_mid_generation_loses_nothing_acknowledged(target: str) -> None:
    acked = kill_mid_generation(target)
    assert acked == list(range(KILL_AT))
    if not target.startswith("postgresql"):
        with sqlite3.connect(target) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with GenomeStore.open(target) as store:
        # Every acknowledged generation, complete; the interrupted one absent.
        assert store.generations("agent") == [(g, WRITE_SIZE) for g in acked]
        for g in acked:
            population = store.population("agent", g)
            assert [r.parameters for r in population] == [(float(g), float(i)) for i in range(WRITE_SIZE)]
            assert [r.version for r in population] == list(range(g * WRITE_SIZE + 1, (g + 1) * WRITE_SIZE + 1))
            # Fitness arrived with the next generation: acknowledged up to the last one.
            want = float(g + 1) if g + 1 in acked else None
            assert {r.fitness for r in population} == {want}
        agent = store.agent("agent")
        assert (agent.generation, agent.settings) == (acked[-1], {"g": acked[-1]})
        assert store.history("agent", limit=1)[0].version == len(acked) * WRITE_SIZE
        # The store carries on where the acknowledged state ends.
        last = store.population("agent", acked[-1])
        store.commit_generation(
            "agent", KILL_AT, [NewGenome((0.0, 0.0))], parameter_names=("g", "i"),
            settings={}, fitness={last[0].id: 9.0},
        )
        assert store.generations("agent")[-1] == (KILL_AT, 1)
