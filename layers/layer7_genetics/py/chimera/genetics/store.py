"""The genome store: every genome of every agent, with version history and lineage.

A generation is written in one transaction (:meth:`GenomeStore.commit_generation`):
the fitness of the previous generation's evaluated members, the new genomes
with their versions and parents, the generation's row and the agent's
settings. Either all of it is stored or none, so a crash (even ``kill -9``)
never leaves a partial generation, and everything a caller was told is stored
stays stored. SQLite is the default (a file under the run directory);
PostgreSQL uses the same schema (:mod:`chimera.genetics.schema`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chimera.genetics.backends import Backend, Executor, IntegrityError, open_backend
from chimera.genetics.schema import MIGRATIONS, SCHEMA_VERSION, TYPES

__all__ = [
    "AgentState",
    "Deployment",
    "GenomeRecord",
    "GenomeStore",
    "NewGenome",
    "StoredGrant",
    "StoreConflict",
]

_CHUNK = 500  # ids per IN (...) query
_MAX_VERSION = 2**63 - 1

_GENOME_COLUMNS = (
    "id, agent_id, version, generation, parameters, parameter_names, hyperparameters,"
    " fitness, mutation_rate, crossover_method, created_at"
)


class StoreConflict(Exception):
    """The write does not fit the stored state (a generation already stored, an unknown genome)."""


@dataclass(frozen=True)
class NewGenome:
    """A genome about to be stored (the store assigns id, version and time)."""

    parameters: tuple[float, ...]
    parent_ids: tuple[str, ...] = ()
    mutation_rate: float = 0.0
    #: chimera.v1.CrossoverMethod value (1 = NONE).
    crossover_method: int = 1
    hyperparameters: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GenomeRecord:
    """A stored genome (mirrors chimera.v1.AgentGenome)."""

    id: str
    agent_id: str
    version: int
    generation: int
    parameters: tuple[float, ...]
    parameter_names: tuple[str, ...]
    hyperparameters: dict[str, float]
    #: None until evaluated.
    fitness: float | None
    mutation_rate: float
    crossover_method: int
    parent_ids: tuple[str, ...]
    #: Seconds since the epoch.
    created_at: float

    @property
    def evaluated(self) -> bool:
        return self.fitness is not None


@dataclass(frozen=True)
class AgentState:
    """An agent's row: its newest generation and its GA settings."""

    agent_id: str
    generation: int
    next_version: int
    settings: dict[str, Any]


@dataclass(frozen=True)
class Deployment:
    """A DeployBest: the genome, the slot, layer 4's version and the one it replaced."""

    module_name: str
    version: int
    agent_id: str
    genome_id: str
    replaced_version: int
    deployed_at: float


@dataclass(frozen=True)
class StoredGrant:
    """A run grant an agent holds (see :mod:`chimera.genetics.grants`)."""

    agent_id: str
    job: str  # layer 8's ScheduledJob, serialized and base64-encoded
    max_population: int
    wall_time_seconds: int
    ends_at: float  # Unix time


class GenomeStore:
    """Typed access to the schema; thread-safe (the backend serialises transactions)."""

    def __init__(self, backend: Backend) -> None:
        self._db = backend
        self.schema_version = migrate(backend)

    @classmethod
    def open(cls, target: str | Path) -> GenomeStore:
        """A SQLite file path, or a ``postgresql://`` URL."""
        return cls(open_backend(target))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> GenomeStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writes -----------------------------------------------------------

    def commit_generation(
        self,
        agent_id: str,
        generation: int,
        genomes: Iterable[NewGenome],
        *,
        parameter_names: Sequence[str],
        settings: Mapping[str, Any],
        fitness: Mapping[str, float] | None = None,
    ) -> list[GenomeRecord]:
        """Stores generation ``generation`` of ``agent_id`` and the fitness of
        earlier genomes, atomically; returns the stored genomes in order.

        Generation 0 creates the agent; generation ``g > 0`` must follow the
        agent's stored generation ``g - 1`` (else :class:`StoreConflict`, so two
        racing callers cannot both advance the same population). ``genomes``
        is consumed inside the transaction.
        """
        now = time.time()
        names = json.dumps(list(parameter_names))
        with self._db.transaction() as tx:
            next_version = self._advance_agent(tx, agent_id, generation, settings)
            for genome_id, value in (fitness or {}).items():
                updated = tx.run(
                    "UPDATE genomes SET fitness = ? WHERE id = ? AND agent_id = ? RETURNING id",
                    (float(value), genome_id, agent_id),
                )
                if not updated:
                    raise StoreConflict(f"genome {genome_id!r} is not a genome of agent {agent_id!r}")
            self._insert(tx, "INSERT INTO generations VALUES (?, ?, 0, ?)", (agent_id, generation, now))
            records = []
            for genome in genomes:
                record = GenomeRecord(
                    id=f"g-{uuid.uuid4().hex}",
                    agent_id=agent_id,
                    version=next_version,
                    generation=generation,
                    parameters=tuple(float(x) for x in genome.parameters),
                    parameter_names=tuple(parameter_names),
                    hyperparameters=dict(genome.hyperparameters),
                    fitness=None,
                    mutation_rate=float(genome.mutation_rate),
                    crossover_method=int(genome.crossover_method),
                    parent_ids=tuple(genome.parent_ids),
                    created_at=now,
                )
                self._insert(
                    tx,
                    f"INSERT INTO genomes ({_GENOME_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.id, agent_id, record.version, generation,
                        json.dumps(record.parameters), names,
                        json.dumps(record.hyperparameters, sort_keys=True), None,
                        record.mutation_rate, record.crossover_method, now,
                    ),
                )
                if record.parent_ids:
                    tx.run_many(
                        "INSERT INTO lineage VALUES (?, ?, ?)",
                        [(record.id, i, p) for i, p in enumerate(record.parent_ids)],
                    )
                records.append(record)
                next_version += 1
            tx.run(
                "UPDATE generations SET size = ? WHERE agent_id = ? AND generation = ?",
                (len(records), agent_id, generation),
            )
            tx.run(
                "UPDATE agents SET next_version = ?, generation = ?, settings = ? WHERE agent_id = ?",
                (next_version, generation, json.dumps(dict(settings), sort_keys=True), agent_id),
            )
        return records

    def _advance_agent(
        self, tx: Executor, agent_id: str, generation: int, settings: Mapping[str, Any]
    ) -> int:
        if generation == 0:
            self._insert(
                tx,
                "INSERT INTO agents VALUES (?, 1, -1, ?)",
                (agent_id, json.dumps(dict(settings), sort_keys=True)),
            )
            return 1
        rows = tx.run("SELECT generation, next_version FROM agents WHERE agent_id = ?", (agent_id,))
        if not rows:
            raise StoreConflict(f"agent {agent_id!r} has no stored generation")
        stored, next_version = int(rows[0][0]), int(rows[0][1])
        if stored != generation - 1:
            raise StoreConflict(
                f"agent {agent_id!r} is at generation {stored}, cannot store generation {generation}"
            )
        return next_version

    @staticmethod
    def _insert(tx: Executor, sql: str, params: Sequence[Any]) -> None:
        try:
            tx.run(sql, params)
        except IntegrityError as exc:
            raise StoreConflict(str(exc)) from exc

    def record_deployment(self, deployment: Deployment) -> None:
        with self._db.transaction() as tx:
            self._insert(
                tx,
                "INSERT INTO deployments VALUES (?, ?, ?, ?, ?, ?)",
                (
                    deployment.module_name, deployment.version, deployment.agent_id,
                    deployment.genome_id, deployment.replaced_version, deployment.deployed_at,
                ),
            )

    def save_bandit(self, family: str, state: str) -> None:
        """Stores the bandit state of a problem family (the engine's ``to_json``)."""
        with self._db.transaction() as tx:
            tx.run(
                "INSERT INTO bandit_state VALUES (?, ?, ?) ON CONFLICT (family)"
                " DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
                (family, state, time.time()),
            )

    def save_grant(self, grant: StoredGrant) -> None:
        """Records the grant an agent holds (replacing any earlier one of the agent)."""
        with self._db.transaction() as tx:
            tx.run(
                "INSERT INTO run_grants VALUES (?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET"
                " job = excluded.job, max_population = excluded.max_population,"
                " wall_time_seconds = excluded.wall_time_seconds, ends_at = excluded.ends_at",
                (grant.agent_id, grant.job, grant.max_population, grant.wall_time_seconds, grant.ends_at),
            )

    def drop_grant(self, agent_id: str) -> None:
        with self._db.transaction() as tx:
            tx.run("DELETE FROM run_grants WHERE agent_id = ?", (agent_id,))

    # --- reads ------------------------------------------------------------

    def grants(self) -> list[StoredGrant]:
        """Every recorded run grant, by agent."""
        with self._db.transaction() as tx:
            rows = tx.run(
                "SELECT agent_id, job, max_population, wall_time_seconds, ends_at FROM run_grants"
                " ORDER BY agent_id"
            )
        return [StoredGrant(str(a), str(j), int(m), int(w), float(e)) for a, j, m, w, e in rows]

    def agent(self, agent_id: str) -> AgentState | None:
        with self._db.transaction() as tx:
            rows = tx.run(
                "SELECT generation, next_version, settings FROM agents WHERE agent_id = ?",
                (agent_id,),
            )
        if not rows:
            return None
        generation, next_version, settings = rows[0]
        return AgentState(agent_id, int(generation), int(next_version), json.loads(settings))

    def get(self, genome_id: str) -> GenomeRecord | None:
        found = self._select("WHERE id = ?", (genome_id,))
        return found[0] if found else None

    def population(self, agent_id: str, generation: int) -> list[GenomeRecord]:
        """Generation ``generation`` of the agent, in version order."""
        return self._select(
            "WHERE agent_id = ? AND generation = ? ORDER BY version", (agent_id, generation)
        )

    def history(
        self,
        agent_id: str,
        *,
        limit: int = 100,
        before_version: int = 0,
        evaluated_only: bool = False,
    ) -> list[GenomeRecord]:
        """The agent's genomes, newest version first."""
        where = "WHERE agent_id = ?"
        params: list[Any] = [agent_id]
        if before_version:
            # Versions are below 2^63 (both databases' BIGINT); larger bounds mean "all".
            where += " AND version < ?"
            params.append(min(before_version, _MAX_VERSION))
        if evaluated_only:
            where += " AND fitness IS NOT NULL"
        return self._select(f"{where} ORDER BY version DESC LIMIT ?", (*params, limit))

    def best(self, agent_id: str) -> GenomeRecord | None:
        """The evaluated genome with the highest fitness (the oldest among equals)."""
        found = self._select(
            "WHERE agent_id = ? AND fitness IS NOT NULL ORDER BY fitness DESC, version LIMIT 1",
            (agent_id,),
        )
        return found[0] if found else None

    def evaluated_count(self, agent_id: str) -> int:
        """Genomes of the agent with a fitness (the evaluations it has used)."""
        with self._db.transaction() as tx:
            rows = tx.run(
                "SELECT COUNT(*) FROM genomes WHERE agent_id = ? AND fitness IS NOT NULL",
                (agent_id,),
            )
        return int(rows[0][0])

    def generations(self, agent_id: str) -> list[tuple[int, int]]:
        """(generation, size) of each stored generation, oldest first."""
        with self._db.transaction() as tx:
            rows = tx.run(
                "SELECT generation, size FROM generations WHERE agent_id = ? ORDER BY generation",
                (agent_id,),
            )
        return [(int(g), int(s)) for g, s in rows]

    def deployments(self, agent_id: str) -> list[Deployment]:
        """The agent's DeployBest records, newest first."""
        with self._db.transaction() as tx:
            rows = tx.run(
                "SELECT module_name, version, agent_id, genome_id, replaced_version, deployed_at"
                " FROM deployments WHERE agent_id = ? ORDER BY deployed_at DESC, version DESC",
                (agent_id,),
            )
        return [Deployment(m, int(v), a, g, int(r), float(t)) for m, v, a, g, r, t in rows]

    def load_bandit(self, family: str) -> str | None:
        with self._db.transaction() as tx:
            rows = tx.run("SELECT state FROM bandit_state WHERE family = ?", (family,))
        return str(rows[0][0]) if rows else None

    def _select(self, where: str, params: Sequence[Any]) -> list[GenomeRecord]:
        with self._db.transaction() as tx:
            rows = tx.run(f"SELECT {_GENOME_COLUMNS} FROM genomes {where}", params)
            ids = [r[0] for r in rows]
            parents: dict[str, list[str]] = {}
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ", ".join("?" * len(chunk))
                for child, parent in tx.run(
                    f"SELECT child_id, parent_id FROM lineage WHERE child_id IN ({marks})"
                    " ORDER BY child_id, position",
                    chunk,
                ):
                    parents.setdefault(child, []).append(parent)
        return [_record(r, tuple(parents.get(r[0], ()))) for r in rows]


def _record(row: Sequence[Any], parent_ids: tuple[str, ...]) -> GenomeRecord:
    gid, agent, version, generation, params, names, hyper, fitness, rate, crossover, created = row
    return GenomeRecord(
        id=gid,
        agent_id=agent,
        version=int(version),
        generation=int(generation),
        parameters=tuple(json.loads(params)),
        parameter_names=tuple(json.loads(names)),
        hyperparameters=json.loads(hyper),
        fitness=None if fitness is None else float(fitness),
        mutation_rate=float(rate),
        crossover_method=int(crossover),
        parent_ids=parent_ids,
        created_at=float(created),
    )


def migrate(backend: Backend, target: int = SCHEMA_VERSION) -> int:
    """Applies the migrations the database lacks, up to ``target``; returns its version."""
    types = TYPES[backend.dialect]
    with backend.transaction() as tx:
        tx.run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY)")
        current = int(tx.run("SELECT COALESCE(MAX(version), 0) FROM schema_version")[0][0])
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"the genome store has schema version {current}; this code knows up to {SCHEMA_VERSION}"
        )
    for version, statements in MIGRATIONS:
        if current < version <= target:
            with backend.transaction() as tx:
                for statement in statements:
                    tx.run(statement.format(**types))
                tx.run("INSERT INTO schema_version VALUES (?)", (version,))
            current = version
    return current
