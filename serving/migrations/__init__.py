"""Schema migrations of the serving store (Alembic): keys, the audit log and outcomes.

``riskprof db upgrade`` brings a database to the code's revision (``head``); ``riskprof db current``
shows where it is. A SQLite file is upgraded automatically when the store opens it (the service
owns that file); any other database (PostgreSQL) is only checked, and the service refuses to start
on an older schema, since a shared database is migrated deliberately, by its owner role.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine

log = logging.getLogger("riskprof.serving")

HERE = Path(__file__).resolve().parent
INITIAL = "0001"
UPGRADE_COMMAND = "riskprof db upgrade"
# any constant: serialises concurrent upgrades of one PostgreSQL database (several workers starting)
_PG_LOCK_KEY = 7_310_412_001


class SchemaMismatch(RuntimeError):
    """The database's schema is not the one this code needs (older, missing, or newer)."""


def config(connection: sa.Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=1)
def head() -> str:
    """The revision this code needs."""
    rev = ScriptDirectory.from_config(config()).get_current_head()
    assert rev is not None
    return rev


def _current(conn: sa.Connection) -> str | None:
    rev = MigrationContext.configure(conn).get_current_revision()
    if rev is None and sa.inspect(conn).has_table("api_keys"):
        return "legacy"  # created before migrations existed: the initial schema without alembic_version
    return rev


def current(engine: Engine) -> str | None:
    """The database's revision: ``None`` when empty, ``"legacy"`` for a pre-migration store."""
    with engine.connect() as conn:
        return _current(conn)


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate to ``revision``; returns (before, after). Safe when several processes start at once.

    An unknown ``revision`` raises alembic's ``CommandError`` before anything is read (at the head, it
    was a silent no-op: "already at revision 0003")."""
    if revision != "head":
        ScriptDirectory.from_config(config()).get_revision(revision)
    with _exclusive(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        before = _current(conn)
        if before == "legacy":
            command.stamp(config(conn), INITIAL)
        if before != head():
            command.upgrade(config(conn), revision)
        after = _current(conn)
    if before != after:
        log.info("serving store migrated from %s to %s", before or "an empty database", after)
    return before, after


def check(engine: Engine) -> None:
    """Raise :class:`SchemaMismatch`, naming the command to run, unless the schema is at ``head``."""
    rev = current(engine)
    need = head()
    if rev == need:
        return
    where = engine.url.render_as_string(hide_password=True)
    if rev is None:
        raise SchemaMismatch(f"the serving store {where} has no schema yet (this code needs revision {need}): "
                             f"run `{UPGRADE_COMMAND}` with RISKPROF_DATABASE_URL set to it")
    known = {s.revision for s in ScriptDirectory.from_config(config()).walk_revisions()} | {"legacy"}
    if rev not in known:
        raise SchemaMismatch(f"the serving store {where} is at revision {rev}, newer than this code "
                             f"(revision {need}): run a newer riskprof against it")
    raise SchemaMismatch(f"the serving store {where} is at revision {rev}, older than this code "
                         f"(revision {need}): run `{UPGRADE_COMMAND}` with RISKPROF_DATABASE_URL set to it")


@contextmanager
def _exclusive(engine: Engine) -> Iterator[None]:
    """On a SQLite file, a lock file next to it (PostgreSQL locks inside the transaction)."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate-lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
