"""Database commands: ``db upgrade`` and ``db current`` for the serving store (keys, audit, outcomes)."""

from __future__ import annotations

import typer
from rich.console import Console

from riskprof.cli_data import fail

console = Console(stderr=True)
db_app = typer.Typer(help="Schema of the serving store (RISKPROF_DATABASE_URL, default SQLite models/serving.db).",
                     no_args_is_help=True)


def _engine(url: str | None, bounded: bool = False):
    from serving.settings import get_serving_settings
    from serving.store import StoreURLError, make_engine

    if url is None:
        url = get_serving_settings().resolved_database_url
    try:
        return make_engine(checked_url(url), timeout=get_serving_settings().db_timeout_seconds if bounded else None)
    except StoreURLError as exc:
        fail(str(exc))
        raise AssertionError("unreachable") from None  # fail() exits


def checked_url(url: str) -> str:
    """A command's store URL, refused if it is SQLite in memory: the command would print "stored" and
    the store vanish with the process (a key created there could never be used)."""
    from serving.store import redacted_url

    bare = url.split("?", 1)[0]
    if bare.startswith("sqlite") and (bare.endswith(":memory:") or bare.rstrip("/") in ("sqlite:", "sqlite+pysqlite:")
                                      or "mode=memory" in url):
        fail(f"{redacted_url(url)} is a SQLite database in memory: it would vanish when this command ends. "
             "Give a file (sqlite:///path/serving.db) or a server database")
    return url


def _describe(rev: str | None) -> str:
    if rev is None:
        return "empty (no schema)"
    if rev == "legacy":
        return "legacy (tables from before migrations; `riskprof db upgrade` stamps and upgrades them)"
    return rev


URL_OPTION = typer.Option(None, "--url", help="SQLAlchemy URL (default: RISKPROF_DATABASE_URL or the SQLite file).")


@db_app.command("upgrade")
def db_upgrade(url: str | None = URL_OPTION,
               revision: str = typer.Option("head", "--revision", help="Target revision.")) -> None:
    """Create or migrate the store's schema (run it as the database's owner role on PostgreSQL)."""
    import sqlalchemy as sa
    from alembic.util import CommandError

    from serving import migrations

    engine = _engine(url)
    where = engine.url.render_as_string(hide_password=True)
    try:
        before, after = migrations.upgrade(engine, revision)
    except (sa.exc.SQLAlchemyError, CommandError) as exc:
        fail(f"could not upgrade {where}: {str(exc).splitlines()[0]}")
        return
    finally:
        engine.dispose()
    if before == after:
        typer.echo(f"{where} is already at revision {after}")
    else:
        typer.echo(f"{where}: {_describe(before)} -> {after}")


@db_app.command("current")
def db_current(url: str | None = URL_OPTION) -> None:
    """Print the store's schema revision and the one this code needs; exit 1 if they differ."""
    import sqlalchemy as sa

    from serving import migrations

    engine = _engine(url, bounded=True)  # a read: a lock held elsewhere stops it with a message, not a hang
    try:
        rev = migrations.current(engine)
    except sa.exc.SQLAlchemyError as exc:
        fail(f"could not read {engine.url.render_as_string(hide_password=True)}: {str(exc).splitlines()[0]}")
        return
    finally:
        engine.dispose()
    head = migrations.head()
    typer.echo(f"current: {_describe(rev)}")
    typer.echo(f"code needs: {head}")
    if rev != head:
        console.print(f"the schema is not at the code's revision: run `{migrations.UPGRADE_COMMAND}`",
                      highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


def open_store(url: str):
    """The serving store at ``url``, or a clear error and exit 2 (schema to upgrade, database unreachable).

    Each of its calls waits for the database at most ``RISKPROF_DB_TIMEOUT_SECONDS`` (a lock held by another
    session or process), then raises ``StoreTimeout``, which the command group ends in one line
    (:func:`store_problem`) rather than hanging (PostgreSQL) or a traceback (SQLite, after 30 s)."""
    import sqlalchemy as sa

    from serving.migrations import SchemaMismatch
    from serving.settings import get_serving_settings
    from serving.store import Store, StoreUnavailable, StoreURLError, redacted_url, timed_out

    timeout = get_serving_settings().db_timeout_seconds
    try:
        return Store.from_url(checked_url(url), timeout_seconds=timeout)
    except (SchemaMismatch, StoreURLError) as exc:
        fail(str(exc))
    except (sa.exc.SQLAlchemyError, StoreUnavailable) as exc:
        wait = f"it did not answer within {timeout:g} s (a lock held by another session or process?): " \
            if timed_out(exc) else ""
        fail(f"cannot open the serving store {redacted_url(url)}: {wait}{str(exc).splitlines()[0]}")
    raise AssertionError("unreachable")  # fail() exits


def store_problem(exc: BaseException) -> str | None:
    """The one line a command ends with when a store call found the database unreachable or did not get an
    answer in time (``serving.store.StoreUnavailable``, ``StoreTimeout``); None for anything else."""
    from serving.store import StoreUnavailable

    if not isinstance(exc, StoreUnavailable):
        return None
    error = exc.extra.get("store_error")
    return f"{exc.message} ({error})" if error else exc.message
