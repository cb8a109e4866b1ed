"""A throwaway PostgreSQL 15 server for the store tests, on a Unix socket in a temp dir.

Debian's ``postgresql`` package provides ``initdb`` and ``pg_ctl``. initdb
refuses to run as root, so a root test runs them as the ``postgres`` system
user (or ``nobody``) through ``setpriv``; the server listens on no TCP port
at all. Where the package or psycopg is missing the tests are skipped and
say which; under CHIMERA_REQUIRE_OPTIONAL=1 (CI) they fail instead
(tools/testing/optional.py).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tools.host_tools.host_tool import recorded
from tools.testing import optional

_POSTGRES = recorded("postgresql")
#: initdb and pg_ctl beside the recorded server binary (@host_tools//:postgresql hashes all three).
PG_BIN = Path(_POSTGRES.path).parent if _POSTGRES.path else None

__all__ = ["PG_BIN", "fresh_database", "postgres_url"]


def _missing() -> str | None:
    if _POSTGRES.missing:
        return _POSTGRES.missing
    if importlib.util.find_spec("psycopg") is None:
        return "psycopg 3 is not installed"
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "running as root without setpriv: initdb refuses root"
    return None


def _run_as() -> tuple[list[str], int | None, int | None]:
    if os.geteuid() != 0:
        return [], None, None
    for name in ("postgres", "nobody"):
        try:
            user = pwd.getpwnam(name)
        except KeyError:
            continue
        prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
        return prefix, user.pw_uid, user.pw_gid
    optional.require("running as root and neither a 'postgres' nor a 'nobody' user exists")
    raise AssertionError("unreachable: optional.require skips or fails")


@contextmanager
def postgres_url() -> Iterator[str]:
    """Starts a server, yields a ``postgresql://`` URL of its database, stops it."""
    optional.require(_missing())
    prefix, uid, gid = _run_as()
    # Under /tmp: the socket path must stay short (107 bytes) and, for the
    # unprivileged user, every directory on the way must be traversable.
    base = Path(tempfile.mkdtemp(prefix="chimera-pg-", dir="/tmp"))
    data = base / "data"
    if uid is not None:
        os.chown(base, uid, gid or 0)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}

    def run(*args: str) -> None:
        done = subprocess.run(
            [*prefix, *args], cwd=base, env=env, capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")

    try:
        run(str(PG_BIN / "initdb"), "-D", str(data), "-U", "chimera", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-c listen_addresses='' -c unix_socket_directories={base}"
        run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start")
        try:
            yield f"postgresql://chimera@/postgres?host={base}"
        finally:
            run(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def fresh_database(server_url: str, name: str) -> str:
    """Creates database ``name`` on the server and returns its URL."""
    import psycopg  # noqa: PLC0415 (only importable where the tests are not skipped)

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.replace("@/postgres?", f"@/{name}?")
