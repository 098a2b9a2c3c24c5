"""A throwaway PostgreSQL cluster started by the test suite (pytest plugin; fixtures ``pg``, ``pg_url``
and ``serving_store``: a migrated serving store on SQLite and, in the slow tier, on PostgreSQL).

Debian's PostgreSQL 15 binaries (``/usr/lib/postgresql/15/bin``, or ``RISKPROF_PG_BIN``) run
``initdb`` and ``pg_ctl`` on a temporary folder; both refuse to run as root, so as root they run as
the ``postgres`` user (``runuser``) on a folder owned by it. The cluster listens on 127.0.0.1 at a
free port, with its unix socket inside the folder, and is removed at the end of the session.
Tests that need it are skipped, with the reason, only when the binaries are missing (``make test``
installs them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PG_BIN = Path(os.environ.get("RISKPROF_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """One PostgreSQL server on a temporary data folder; ``stop``/``start`` simulate an outage."""

    def __init__(self, bin_dir: Path = PG_BIN):
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="riskprof-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        self.socket_dir.mkdir()
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.socket_dir, "postgres", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")

    def start(self) -> None:
        # fsync off: a throwaway cluster that the tests stop cleanly; crashes tested are the API's, not its
        opts = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c max_connections=100 "
                "-c shared_buffers=32MB -c fsync=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", opts,
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"

    def execute(self, *statements: str, database: str = "postgres", user: str = "postgres") -> None:
        """Run statements in autocommit (CREATE DATABASE cannot run in a transaction)."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, dbname=database, user=user,
                             autocommit=True) as conn:
            for sql in statements:
                conn.execute(sql)  # type: ignore[call-overload]

    def create_database(self, prefix: str = "t") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.execute(f'CREATE DATABASE "{name}"')
        return name

    def remove(self) -> None:
        with contextlib.suppress(Exception):  # already stopped
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg() -> Iterator[PgCluster]:
    """A running PostgreSQL 15 for the whole session."""
    if not (PG_BIN / "initdb").exists() or not (PG_BIN / "pg_ctl").exists():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (install Debian's `postgresql`, as `make test` "
                    f"does, or set RISKPROF_PG_BIN)")
    cluster = PgCluster()
    try:
        t0 = time.perf_counter()
        cluster.init()
        cluster.start()
        print(f"\nPostgreSQL started on port {cluster.port} in {time.perf_counter() - t0:.1f} s")
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def pg_url(pg: PgCluster) -> str:
    """The URL of a fresh, empty database in the session's cluster."""
    return pg.url(pg.create_database())


# PostgreSQL runs start a throwaway cluster (a server): not for the fast tier
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.slow, pytest.mark.integration])])
def serving_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh serving store (``serving.store.Store``), migrated: SQLite in ``tmp_path``, or PostgreSQL."""
    from serving import migrations
    from serving.store import Store, make_engine

    if request.param == "sqlite":
        s = Store.from_url(f"sqlite:///{tmp_path / 'serving.db'}")
    else:
        s = Store(make_engine(request.getfixturevalue("pg_url")))
        migrations.upgrade(s.engine)
    yield s
    s.dispose()
