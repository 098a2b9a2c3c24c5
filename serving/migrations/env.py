"""Alembic environment: migrations run on the connection :mod:`serving.migrate` hands over.

Run through ``riskprof db upgrade`` (or :func:`serving.migrate.upgrade`), which passes an open
connection in ``config.attributes["connection"]``; a URL in ``sqlalchemy.url`` also works.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from serving.store import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = sa.create_engine(config.get_main_option("sqlalchemy.url") or "")
        with engine.begin() as conn:
            _migrate(conn)
        engine.dispose()
    else:
        _migrate(connection)


def _migrate(connection: sa.Connection) -> None:
    # SQLite cannot ALTER most things: batch mode copies the table instead
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite", transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported: run `riskprof db upgrade`")
run()
