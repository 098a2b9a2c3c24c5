"""The serving store on both databases it supports: SQLite (a file) and a real PostgreSQL 15.

Every test here runs twice, once per backend (``store_url``); the PostgreSQL cluster is started by
the suite itself (``tests/pg.py``), each test gets a fresh database in it.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from serving import migrations
from serving.errors import ConflictError
from serving.roles import Principal, Role
from serving.store import AuditEvent, Store, make_engine, metadata, outcomes_frame

OUTCOME: dict[str, Any] = {
    "declaration_id": "D-1", "inspected_date": "2023-06-02", "inspected": True, "selection_source": "model",
    "selection_probability": 1.0, "hit": True, "case_id": "C-1", "revenue": 10.0,
}


# the PostgreSQL runs start a throwaway cluster (a server): not for the fast tier
@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.slow, pytest.mark.integration])])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'serving.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_url: str):
    s = Store.from_url(store_url) if store_url.startswith("sqlite") else _upgraded(store_url)
    yield s
    s.dispose()


def _upgraded(url: str) -> Store:
    engine = make_engine(url)
    migrations.upgrade(engine)
    return Store(engine)


def _event(n: int, who: str = "k") -> AuditEvent:
    items = [{"declaration_id": f"D-{i}", "risk_score": 0.5, "lane": "yellow", "reasons": [{"feature": "x"}]}
             for i in range(n)]
    return AuditEvent.of(Principal(who, Role.officer), "score", "m", "1", items)


# ---- schema ------------------------------------------------------------------------------------


def test_migrations_build_exactly_the_code_schema(store: Store) -> None:
    assert migrations.current(store.engine) == migrations.head()
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_current_reports_it(store: Store) -> None:
    assert migrations.upgrade(store.engine) == (migrations.head(), migrations.head())
    migrations.check(store.engine)  # no exception at head


def test_sqlite_file_is_created_and_migrated_when_opened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'fresh.db'}"
    store = Store.from_url(url)
    assert migrations.current(store.engine) == migrations.head()
    store.create_api_key("a", "officer")
    store.dispose()
    again = Store.from_url(url)  # opening it again keeps the data
    assert [k.name for k in again.list_keys()] == ["a"]
    again.dispose()


def test_postgres_is_never_migrated_implicitly(pg_url: str) -> None:
    with pytest.raises(migrations.SchemaMismatch, match=r"no schema yet .* run `riskprof db upgrade`"):
        Store.from_url(pg_url)
    engine = make_engine(pg_url)
    assert migrations.current(engine) is None
    assert not sa.inspect(engine).has_table("api_keys")
    migrations.upgrade(engine)
    engine.dispose()
    Store.from_url(pg_url).dispose()  # at head: opens


def test_older_schema_is_refused_with_the_command(store_url: str) -> None:
    engine = make_engine(store_url)
    # the store as created before migrations: the initial tables, no alembic_version
    metadata.create_all(engine, tables=[metadata.tables[t] for t in ("api_keys", "audit_events", "audit_items",
                                                                     "outcomes")])
    assert migrations.current(engine) == "legacy"
    with pytest.raises(migrations.SchemaMismatch, match=r"older than this code .* run `riskprof db upgrade`"):
        migrations.check(engine)
    assert migrations.upgrade(engine) == ("legacy", migrations.head())
    migrations.check(engine)
    engine.dispose()


def test_newer_schema_is_refused(store_url: str) -> None:
    engine = make_engine(store_url)
    migrations.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(migrations.SchemaMismatch, match="9999, newer than this code"):
        migrations.check(engine)
    engine.dispose()


def test_cli_db_upgrade_and_current(store_url: str) -> None:
    from typer.testing import CliRunner

    from riskprof.cli import app

    runner = CliRunner()
    before = runner.invoke(app, ["db", "current", "--url", store_url])
    assert before.exit_code == 1 and "current: empty" in before.stdout
    assert "riskprof db upgrade" in before.output
    up = runner.invoke(app, ["db", "upgrade", "--url", store_url])
    assert up.exit_code == 0, up.output
    assert f"-> {migrations.head()}" in up.output
    after = runner.invoke(app, ["db", "current", "--url", store_url])
    assert after.exit_code == 0 and f"current: {migrations.head()}" in after.stdout
    again = runner.invoke(app, ["db", "upgrade", "--url", store_url])
    assert again.exit_code == 0 and "already at revision" in again.output


def test_cli_db_upgrade_unreachable_database_is_a_clear_error() -> None:
    from typer.testing import CliRunner

    from riskprof.cli import app

    res = CliRunner().invoke(app, ["db", "upgrade", "--url", "postgresql+psycopg://nobody@127.0.0.1:1/none"])
    assert res.exit_code == 2 and "could not upgrade" in res.output
    assert "Traceback" not in res.output


# ---- keys --------------------------------------------------------------------------------------


def test_keys_verify_and_revoke(store: Store) -> None:
    key = store.create_api_key("desk", "analyst")
    principal = store.verify_api_key(key)
    assert principal == Principal("desk", Role.analyst, principal.key_id)
    assert store.key_active(principal.key_id)
    assert store.verify_api_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    for odd in ("rpk_ab\x00cd_secret", "rpk_NOT-HEX_secret", "rpk__secret", f"rpk_{'a' * 33}_secret"):
        assert store.verify_api_key(odd) is None, odd  # refused before the database sees it (PostgreSQL: no NUL)
    assert store.revoke_key("desk") and not store.revoke_key("desk")
    assert not store.key_active(principal.key_id)
    assert store.verify_api_key(key) is None
    assert store.count_active_keys() == 0
    with pytest.raises(ValueError, match="already exists"):
        store.create_api_key("desk", "officer")


@pytest.mark.parametrize("name, problem", [("a\nb", "one line of printable text"), ("desk\t2", "one line"),
                                           ("x" * 201, "at most 200 characters, got 201")])
def test_a_key_name_that_would_break_a_listing_or_the_column_is_refused(store: Store, name: str,
                                                                        problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        store.create_api_key(name, "officer")
    assert store.list_keys() == []
    store.create_api_key("Zoë's desk, Incheon", "officer")  # any printable text is a name
    assert [k.name for k in store.list_keys()] == ["Zoë's desk, Incheon"]


def test_key_verifier_refuses_a_revoked_key_at_once_despite_its_cache(store: Store) -> None:
    from serving.auth import KeyVerifier

    key = store.create_api_key("cached", "officer")
    verifier = KeyVerifier(store, ttl_seconds=3600)
    assert verifier.verify(key) is not None
    other = Store(make_engine(store.engine.url.render_as_string(hide_password=False)))  # "another process"
    assert other.revoke_key("cached")
    other.dispose()
    assert verifier.verify(key) is None


# ---- audit -------------------------------------------------------------------------------------


def test_audit_roundtrip(store: Store) -> None:
    store.append_audit_events([_event(3), _event(2, "other")])
    frame = store.audit_frame()
    assert len(frame) == 5
    assert list(frame["declaration_id"]) == ["D-0", "D-1", "D-2", "D-0", "D-1"]
    assert frame["reasons"].iloc[0] == [{"feature": "x"}]
    assert frame["created_at"].notna().all()


def test_the_selections_monitoring_reads_are_the_audit_logs_columns(store: Store) -> None:
    store.append_audit_events([_event(3), _event(2, "other"), _event(0)])
    cols = ["declaration_id", "created_at", "risk_score", "lane", "selection", "selection_probability"]
    got = store.selections_frame()
    assert list(got.columns) == cols and len(got) == 5
    pd.testing.assert_frame_equal(got, store.audit_frame()[cols].reset_index(drop=True))
    empty = Store.from_url(f"sqlite:///{store.engine.url.database}-empty") if store.engine.dialect.name == "sqlite" \
        else None
    if empty is not None:
        assert list(empty.selections_frame().columns) == cols and empty.selections_frame().empty
        empty.dispose()


@pytest.mark.parametrize("statement", ["UPDATE audit_items SET lane = 'green'", "DELETE FROM audit_items",
                                       "UPDATE audit_events SET key_name = 'x'", "DELETE FROM audit_events"])
def test_audit_tables_are_append_only_in_the_database(store: Store, statement: str) -> None:
    store.append_audit_events([_event(2)])
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert len(store.audit_frame()) == 2


def test_postgres_audit_refuses_truncate(pg_url: str) -> None:
    store = _upgraded(pg_url)
    store.append_audit_events([_event(1)])
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE audit_items"))
    assert len(store.audit_frame()) == 1
    store.dispose()


# ---- outcomes ----------------------------------------------------------------------------------


def test_outcomes_idempotent_and_conflicts(store: Store) -> None:
    assert store.record_outcomes([OUTCOME], "k") == ["created"]
    assert store.record_outcomes([OUTCOME, {**OUTCOME, "declaration_id": "D-2"}], "k") == ["unchanged", "created"]
    with pytest.raises(ConflictError):
        store.record_outcomes([{**OUTCOME, "declaration_id": "D-3"}, {**OUTCOME, "hit": False}], "k")
    frame = outcomes_frame(store)
    assert list(frame["declaration_id"]) == ["D-1", "D-2"]  # the conflicting call wrote nothing
    assert frame["inspected_date"].iloc[0] == dt.datetime(2023, 6, 2)
    # two different outcomes for a new declaration in one call: nothing is recorded, and the message said
    # "already recorded for this declaration"
    with pytest.raises(ConflictError) as raised:
        store.record_outcomes([{**OUTCOME, "declaration_id": "D-4"}, {**OUTCOME, "declaration_id": "D-4",
                                                                       "hit": False}], "k")
    (problem,) = raised.value.problems
    assert problem.item == 1 and "is given for this declaration earlier in this request (item 0)" in problem.message
    assert "already recorded" not in problem.message and "D-4" not in set(outcomes_frame(store)["declaration_id"])


def test_the_same_outcome_posted_concurrently_is_stored_once(store: Store) -> None:
    """Eight writers race to record the same 50 outcomes: each is stored once, every call succeeds."""
    batch = [{**OUTCOME, "declaration_id": f"R-{i}"} for i in range(50)]
    results: list[list[str]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def post() -> None:
        barrier.wait()
        try:
            results.append(store.record_outcomes(batch, "k"))
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 8
    created = sum(r.count("created") for r in results)
    assert created == 50  # each outcome created by exactly one writer, "unchanged" for the others
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM outcomes")).scalar_one() == 50


@pytest.mark.parametrize("args", [["serve", "--port", "1"], ["keys", "create", "--role", "officer", "--name", "x"],
                                  ["keys", "list"]])
def test_cli_refuses_an_unmigrated_postgres_naming_the_command(pg_url: str, args: list[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from riskprof.cli import app
    from serving.settings import get_serving_settings

    monkeypatch.setenv("RISKPROF_DATABASE_URL", pg_url)
    get_serving_settings.cache_clear()
    try:
        res = CliRunner().invoke(app, args)
    finally:
        get_serving_settings.cache_clear()
    assert res.exit_code == 2, res.output
    assert "no schema yet" in res.output and "riskprof db upgrade" in res.output
    assert "Traceback" not in res.output


def test_cli_unreachable_store_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from riskprof.cli import app
    from serving.settings import get_serving_settings

    monkeypatch.setenv("RISKPROF_DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/none")
    get_serving_settings.cache_clear()
    try:
        res = CliRunner().invoke(app, ["keys", "list"])
    finally:
        get_serving_settings.cache_clear()
    assert res.exit_code == 2 and "cannot open the serving store" in res.output
    assert "secret" not in res.output and "Traceback" not in res.output
