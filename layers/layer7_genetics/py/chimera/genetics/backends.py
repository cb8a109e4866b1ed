"""The two databases behind the genome store: SQLite (default) and PostgreSQL.

Both give the store the same thing: a transaction in which it runs
``?``-placeholder SQL and reads rows as tuples. SQLite runs in WAL mode with
``synchronous=FULL``, so a committed transaction survives the process being
killed (and a power cut); PostgreSQL commits are durable by default.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Backend", "Executor", "IntegrityError", "PostgresBackend", "SqliteBackend", "open_backend"]

Row = tuple[Any, ...]


class IntegrityError(Exception):
    """A constraint refused a write (e.g. the same generation stored twice)."""


class Executor(Protocol):
    """Runs statements inside one transaction."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Executes ``sql`` (``?`` placeholders) and returns its rows (none for writes)."""
        ...

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Executes ``sql`` once per parameter row."""
        ...


class Backend(Protocol):
    """A database connection the store owns."""

    dialect: str

    def transaction(self) -> Any:
        """A context manager yielding an :class:`Executor`; commits on success."""
        ...

    def close(self) -> None: ...


class _SqliteExecutor:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc


class SqliteBackend:
    """One connection to a database file, serialised by a lock (gRPC handlers share it)."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[_SqliteExecutor]:
        with self._lock:
            # IMMEDIATE takes the write lock up front, so two writers never
            # deadlock upgrading read locks.
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteExecutor(self._conn)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class _PostgresExecutor:
    def __init__(self, cursor: Any, errors: Any) -> None:
        self._cursor = cursor
        self._errors = errors

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        try:
            self._cursor.execute(sql.replace("?", "%s"), tuple(params))
        except self._errors.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc
        return list(self._cursor.fetchall()) if self._cursor.description else []

    def run_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._cursor.executemany(sql.replace("?", "%s"), rows)
        except self._errors.IntegrityError as exc:
            raise IntegrityError(str(exc)) from exc


class PostgresBackend:
    """One psycopg 3 connection, serialised by a lock."""

    dialect = "postgresql"

    def __init__(self, conninfo: str) -> None:
        try:
            import psycopg  # noqa: PLC0415 (optional dependency, only for this backend)
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise RuntimeError("the PostgreSQL genome store needs psycopg 3 (psycopg[binary])") from exc
        self._psycopg = psycopg
        self._conn = psycopg.connect(conninfo, autocommit=True)
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self) -> Iterator[_PostgresExecutor]:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cursor:
            yield _PostgresExecutor(cursor, self._psycopg)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def open_backend(target: str | Path) -> SqliteBackend | PostgresBackend:
    """``postgresql://...`` (or ``postgres://``) selects PostgreSQL; anything
    else is a SQLite file path (``sqlite:///`` prefix optional)."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresBackend(text)
    return SqliteBackend(Path(text.removeprefix("sqlite://")))
