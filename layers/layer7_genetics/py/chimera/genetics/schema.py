"""The genome store's schema as numbered migrations, shared by SQLite and PostgreSQL.

Each migration is a list of statements applied in one transaction together
with its row in ``schema_version``; a store opened on an older database
applies the missing ones in order, and refuses a database newer than it knows.
The two dialects differ only in the type names below (``{real}``, ``{bigint}``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "TYPES"]

#: Per dialect: the SQL type of a float and of a 64-bit integer.
TYPES: Final = {
    "sqlite": {"real": "REAL", "bigint": "INTEGER"},
    "postgresql": {"real": "DOUBLE PRECISION", "bigint": "BIGINT"},
}

#: (version, statements). Never edit a released migration: add a new one.
MIGRATIONS: Final[tuple[tuple[int, tuple[str, ...]], ...]] = (
    (
        1,
        (
            # One row per agent: the next genome version, the newest stored
            # generation and the GA's settings (bounds, operators) as JSON.
            """CREATE TABLE agents (
                agent_id TEXT PRIMARY KEY,
                next_version {bigint} NOT NULL,
                generation INTEGER NOT NULL,
                settings TEXT NOT NULL
            )""",
            # Written in the same transaction as its genomes: a generation row
            # exists exactly when all of its `size` genomes do.
            """CREATE TABLE generations (
                agent_id TEXT NOT NULL REFERENCES agents (agent_id),
                generation INTEGER NOT NULL,
                size INTEGER NOT NULL,
                created_at {real} NOT NULL,
                PRIMARY KEY (agent_id, generation)
            )""",
            """CREATE TABLE genomes (
                id TEXT PRIMARY KEY,
                agent_id TEXT NOT NULL REFERENCES agents (agent_id),
                version {bigint} NOT NULL,
                generation INTEGER NOT NULL,
                parameters TEXT NOT NULL,
                parameter_names TEXT NOT NULL,
                hyperparameters TEXT NOT NULL,
                fitness {real},
                mutation_rate {real} NOT NULL,
                crossover_method INTEGER NOT NULL,
                created_at {real} NOT NULL,
                UNIQUE (agent_id, version),
                FOREIGN KEY (agent_id, generation) REFERENCES generations (agent_id, generation)
            )""",
            "CREATE INDEX genomes_by_generation ON genomes (agent_id, generation)",
            """CREATE TABLE lineage (
                child_id TEXT NOT NULL REFERENCES genomes (id),
                position INTEGER NOT NULL,
                parent_id TEXT NOT NULL REFERENCES genomes (id),
                PRIMARY KEY (child_id, position)
            )""",
        ),
    ),
    (
        2,
        (
            # DeployBest: which genome went to which slot, as which layer-4
            # version, and the version it replaced (0 = none).
            """CREATE TABLE deployments (
                module_name TEXT NOT NULL,
                version {bigint} NOT NULL,
                agent_id TEXT NOT NULL REFERENCES agents (agent_id),
                genome_id TEXT NOT NULL REFERENCES genomes (id),
                replaced_version {bigint} NOT NULL,
                deployed_at {real} NOT NULL,
                PRIMARY KEY (module_name, version)
            )""",
            # The engine's bandit state (its to_json), one blob per problem family.
            """CREATE TABLE bandit_state (
                family TEXT PRIMARY KEY,
                state TEXT NOT NULL,
                updated_at {real} NOT NULL
            )""",
        ),
    ),
    (
        3,
        (
            # The run grants agents hold (BeginRun .. EndRun), so a restarted
            # service still holds them: layer 8's job (its ScheduledJob message,
            # base64), the bounds, and when the run's wall time ends (Unix time).
            """CREATE TABLE run_grants (
                agent_id TEXT PRIMARY KEY,
                job TEXT NOT NULL,
                max_population INTEGER NOT NULL,
                wall_time_seconds INTEGER NOT NULL,
                ends_at {real} NOT NULL
            )""",
        ),
    ),
)

#: The schema version this code writes.
SCHEMA_VERSION: Final = MIGRATIONS[-1][0]
