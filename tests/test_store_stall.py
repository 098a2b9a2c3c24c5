"""A stalled database (a lock held by someone's open transaction, a busy SQLite file) costs a call at most
``RISKPROF_DB_TIMEOUT_SECONDS``, then a 503 naming the wait; nothing is decided or recorded, and calls
succeed again once the lock is released.

The quick tests hold a SQLite lock against the store itself; the slow ones call a real uvicorn server
(``tests/api_process.app_in_thread``) while another connection holds a lock on SQLite or on the suite's
PostgreSQL cluster (``tests/pg.py``). Bounds on time are generous (three times the setting).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from serving.roles import Principal, Role
from serving.store import AuditEvent, Store, StoreTimeout

WHO = Principal("desk", Role.officer, "0")


def _event(declaration_id: str) -> AuditEvent:
    return AuditEvent.of(WHO, "score", "m", "1", [{"declaration_id": declaration_id, "risk_score": 0.2,
                                                   "lane": "green"}])


@contextlib.contextmanager
def sqlite_write_lock(path: Path) -> Iterator[None]:
    """Another process's writer: holds the SQLite file's write lock until the block ends."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


@contextlib.contextmanager
def pg_lock(url: str, statement: str) -> Iterator[None]:
    """Someone's open transaction holding the lock ``statement`` takes, until the block ends."""
    import psycopg

    u = sa.engine.make_url(url)
    conn = psycopg.connect(host=u.host, port=u.port, dbname=u.database, user=u.username)
    try:
        conn.execute(statement)  # type: ignore[call-overload]
        yield
        conn.rollback()
    finally:
        conn.close()


def _eventually(fn: Callable[[], Any], ok: Callable[[Any], bool], bound: float) -> Any:
    """``fn()`` again until ``ok`` of its answer, for at most ``bound`` seconds; its last answer."""
    deadline = time.monotonic() + bound
    while True:
        out, _ = _timed(fn)
        if ok(out) or time.monotonic() > deadline:
            return out
        time.sleep(0.05)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - returned for the test to check
        out = exc
    return out, time.perf_counter() - t0


# ---- the store (quick: SQLite) --------------------------------------------------------------------


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    path = tmp_path / "serving.db"
    Store.from_url(f"sqlite:///{path}").dispose()  # migrated once, without the timeout
    return path


def test_the_timeout_is_set_once_per_connection(sqlite_path: Path) -> None:
    store = Store.from_url(f"sqlite:///{sqlite_path}", timeout_seconds=0.25)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 250
    finally:
        store.dispose()
    plain = Store.from_url(f"sqlite:///{sqlite_path}")  # the batch jobs and the CLI: as before
    try:
        with plain.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30_000
    finally:
        plain.dispose()


def test_an_audit_write_that_waits_past_the_timeout_is_a_503_and_records_nothing(sqlite_path: Path) -> None:
    timeout = 0.4
    store = Store.from_url(f"sqlite:///{sqlite_path}", timeout_seconds=timeout)
    try:
        with sqlite_write_lock(sqlite_path):
            assert store.key_active("nope") is False  # reads go on (WAL): only the write waits
            refused, took = _timed(lambda: store.append_audit_events([_event("D-stalled")]))
        assert isinstance(refused, StoreTimeout), refused
        assert refused.status_code == 503
        assert refused.body() == {
            "detail": "the serving store (database) did not answer within 0.4 s (a lock held by another session "
                      "or process, or the database overloaded), so nothing was decided or recorded; retry shortly",
            "store_error": "OperationalError"}
        assert took < 3 * timeout
        # the lock released: writes again (once the stall guard's probe got through, see below)
        assert _eventually(lambda: store.append_audit_events([_event("D-after")]), lambda out: out is None,
                           3 * timeout) is None
        assert list(store.audit_frame()["declaration_id"]) == ["D-after"]
    finally:
        store.dispose()


def test_after_a_timeout_calls_are_refused_at_once_until_the_database_answers(sqlite_path: Path) -> None:
    """A one-worker API makes small requests' store calls on its event loop: each stalled call would hold
    every other request (/health too) for the whole timeout. After one timed out, the next are refused at
    once with the same 503, and /ready's ping says so without waiting, until a probe gets through."""
    timeout = 0.5
    store = Store.from_url(f"sqlite:///{sqlite_path}", timeout_seconds=timeout)
    try:
        assert store.ping() is True
        with sqlite_write_lock(sqlite_path):
            first, _ = _timed(lambda: store.append_audit_events([_event("D-1")]))
            assert isinstance(first, StoreTimeout)
            for call in (lambda: store.append_audit_events([_event("D-2")]), lambda: store.key_active("0")):
                refused, took = _timed(call)
                assert isinstance(refused, StoreTimeout) and refused.body() == first.body()
                assert took < timeout / 2  # not another wait
            ping, took = _timed(store.ping)
            assert ping is False and took < timeout / 2
        assert _eventually(store.ping, lambda up: up is True, 3 * timeout) is True
        assert store.key_active("0") is False  # answered again
        store.append_audit_events([_event("D-3")])
        assert list(store.audit_frame()["declaration_id"]) == ["D-3"]
    finally:
        store.dispose()


def test_no_free_pooled_connection_within_the_timeout_is_a_503(sqlite_path: Path) -> None:
    timeout = 0.3
    store = Store.from_url(f"sqlite:///{sqlite_path}", timeout_seconds=timeout)
    pool = store.engine.pool
    held = [store.engine.connect() for _ in range(pool.size() + pool._max_overflow)]  # type: ignore[attr-defined]
    try:
        refused, took = _timed(lambda: store.key_active("0"))
        assert isinstance(refused, StoreTimeout) and "did not answer within 0.3 s" in refused.message
        assert refused.extra == {"store_error": "TimeoutError"}
        assert took < 3 * timeout
    finally:
        for conn in held:
            conn.close()
    assert _eventually(lambda: store.key_active("0"), lambda out: out is False, 3 * timeout) is False
    store.dispose()


# ---- the real API (slow: a uvicorn server; PostgreSQL) ---------------------------------------------

TIMEOUT = 1.0  # RISKPROF_DB_TIMEOUT_SECONDS of the servers below
DECL = {"declaration_date": "2023-06-01", "hs_code": "820600", "importer_id": "IMP000123", "origin_country": "CN"}


def decl(declaration_id: str) -> dict[str, Any]:
    return {"declaration_id": declaration_id, **DECL}


class Served:
    """A uvicorn server on a real store, an officer's key, and a way to hold a lock against it."""

    def __init__(self, url: str, base: str, key: str, store: Store, lock: Callable[[str], Any]):
        self.url, self.base, self.key, self.store, self.lock = url, base, key, store, lock

    def client(self) -> httpx.Client:
        # a client that gives up long after the server should have: a hang fails the test, not the suite
        return httpx.Client(base_url=self.base, headers={"X-API-Key": self.key}, timeout=10 * TIMEOUT)


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tiny_model: Any, tmp_path: Path) -> Iterator[Served]:
    from serving import ServingSettings, create_app, migrations
    from serving.store import make_engine
    from tests.api_process import app_in_thread
    from tests.conftest import TinyRegistry

    if request.param == "sqlite":
        path = tmp_path / "serving.db"
        url = f"sqlite:///{path}"

        def lock(_what: str) -> Any:
            return sqlite_write_lock(path)
    else:
        url = request.getfixturevalue("pg_url")
        engine = make_engine(url)
        migrations.upgrade(engine)
        engine.dispose()

        def lock(statement: str) -> Any:
            return pg_lock(url, statement)
    store = Store.from_url(url)
    key = store.create_api_key("desk", "officer")
    registry = TinyRegistry("tiny", tiny_model.model)
    settings = ServingSettings(model_name="tiny", database_url=url, seizures_path=tmp_path / "none.parquet",
                               key_cache_seconds=0, db_timeout_seconds=TIMEOUT)
    try:
        with app_in_thread(create_app(settings, loader=registry.load, resolver=registry.resolve)) as base:
            yield Served(url, base, key, store, lock)
    finally:
        store.dispose()


# what the other session holds, per database: the key check waits (PostgreSQL: the table locked), or the
# audit insert waits once the key is checked (PostgreSQL: inserts blocked, reads not; SQLite: the write lock)
STALLS = {"sqlite": ["BEGIN IMMEDIATE"],
          "postgresql": ["LOCK TABLE api_keys", "LOCK TABLE audit_items IN SHARE MODE"]}


@pytest.mark.slow
@pytest.mark.integration
def test_a_stalled_store_answers_503_within_the_timeout_and_recovers(served: Served) -> None:
    kind = "sqlite" if served.url.startswith("sqlite") else "postgresql"
    with served.client() as http:
        assert http.post("/v1/score", json=decl("S-before")).status_code == 200
        for n, stall in enumerate(STALLS[kind]):
            with served.lock(stall):
                answer, took = _timed(lambda n=n: http.post("/v1/score", json=decl(f"S-stalled-{n}")))
            assert answer.status_code == 503, (stall, answer.text)
            assert answer.json()["detail"].startswith(
                f"the serving store (database) did not answer within {TIMEOUT:g} s"), answer.text
            assert took < 3 * TIMEOUT, (stall, took)
            after = _eventually(lambda n=n: http.post("/v1/score", json=decl(f"S-after-{n}")),  # lock released
                                lambda r: getattr(r, "status_code", None) == 200, 3 * TIMEOUT)
            assert after.status_code == 200, (stall, after.text)
    audited = set(served.store.audit_frame()["declaration_id"])
    n = len(STALLS[kind])
    assert audited == {"S-before", *(f"S-after-{i}" for i in range(n))}  # no 503'd call is in the log


@pytest.mark.slow
@pytest.mark.integration
def test_health_and_ready_answer_while_the_store_stalls(served: Served) -> None:
    """Six scoring calls arrive while the store stalls: they answer 503 within the bound (not one
    timeout after another on the event loop), /health answers 200 meanwhile, /ready answers 503 saying the
    store is not answering; once the lock is released /ready and scoring recover by themselves."""
    kind = "sqlite" if served.url.startswith("sqlite") else "postgresql"
    answers: dict[str, tuple[Any, float]] = {}

    def call(name: str, method: str, path: str, **kw: Any) -> None:
        with served.client() as http:
            answers[name] = _timed(lambda: http.request(method, path, **kw))

    with served.client() as http:
        assert http.get("/ready").status_code == 200
        with served.lock(STALLS[kind][0]):
            threads = [threading.Thread(target=call, args=(f"score-{i}", "POST", "/v1/score"),
                                        kwargs={"json": decl(f"H-{i}")}) for i in range(6)]
            threads += [threading.Thread(target=call, args=(name, "GET", f"/{name}")) for name in ("health", "ready")]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30 * TIMEOUT)
            again = _timed(lambda: http.get("/ready"))  # the stall known: said at once
        for name, (answer, took) in answers.items():
            assert not isinstance(answer, Exception), (name, answer)
            assert took < 3 * TIMEOUT, (name, took)
        assert {name: answer.status_code for name, (answer, _) in answers.items()} == {
            **{f"score-{i}": 503 for i in range(6)}, "health": 200, "ready": 503}
        for name in ("ready", "again"):
            ready, took = answers["ready"] if name == "ready" else again
            assert ready.status_code == 503 and took < 3 * TIMEOUT
            assert ready.json()["store_reachable"] is False and ready.json()["model_loaded"] is True
        assert _eventually(lambda: http.get("/ready"), lambda r: r.status_code == 200, 3 * TIMEOUT).status_code == 200
        assert http.post("/v1/score", json=decl("H-after")).status_code == 200
    assert set(served.store.audit_frame()["declaration_id"]) == {"H-after"}


# ---- the CLI (keys, profiles): one line and exit 2, not a hang or a traceback --------------------------


def test_cli_key_commands_on_a_locked_sqlite_store_end_in_one_line(sqlite_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from riskprof.cli import app
    from tests.conftest import settings_env

    with settings_env(monkeypatch, RISKPROF_DATABASE_URL=f"sqlite:///{sqlite_path}", RISKPROF_DB_TIMEOUT_SECONDS="0.3"):
        runner = CliRunner()
        with sqlite_write_lock(sqlite_path):
            assert runner.invoke(app, ["keys", "list"]).exit_code == 0  # reads go on (WAL)
            for args in (["keys", "create", "--role", "officer", "--name", "desk"], ["keys", "revoke", "--name", "x"]):
                res, took = _timed(lambda args=args: runner.invoke(app, args))
                assert res.exit_code == 2, res.output  # it waited 30 s, then a traceback
                assert "did not answer within 0.3 s" in res.output and "Traceback" not in res.output
                assert took < 3 * 0.3
        assert runner.invoke(app, ["keys", "create", "--role", "officer", "--name", "desk"]).exit_code == 0


@pytest.mark.slow
@pytest.mark.integration
def test_cli_commands_on_a_locked_postgresql_store_end_in_one_line(pg_url: str) -> None:
    """`LOCK TABLE api_keys` (or a migration's lock on the profile tables) held elsewhere: `riskprof keys` and
    `riskprof profiles` waited for ever; now they stop after RISKPROF_DB_TIMEOUT_SECONDS with one line."""
    import os
    import subprocess
    import sys

    from serving import migrations
    from serving.store import make_engine
    from tests.conftest import REPO

    engine = make_engine(pg_url)
    migrations.upgrade(engine)
    engine.dispose()
    env = {**os.environ, "PYTHONPATH": str(REPO), "RISKPROF_DATABASE_URL": pg_url, "RISKPROF_DB_TIMEOUT_SECONDS": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", "from riskprof.cli import app; app()", *args], env=env,
                              capture_output=True, text=True, timeout=60)  # a hang fails the test

    with pg_lock(pg_url, "LOCK TABLE api_keys, profile_versions, profile_changes"):
        for args in (["keys", "list"], ["keys", "create", "--role", "officer", "--name", "desk"],
                     ["profiles", "list"]):
            res = cli(*args)
            assert res.returncode == 2, (args, res.stdout, res.stderr)
            assert "did not answer within 1 s" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert cli("keys", "create", "--role", "officer", "--name", "desk").returncode == 0
    assert "desk" in cli("keys", "list").stdout


def test_the_case_workflow_on_a_locked_store_is_a_503_not_a_500(sqlite_path: Path) -> None:
    # the workbench's case steps (assign, status, note) wrote without the store's error handling: a generic 500
    from serving.case_store import CaseStore
    from serving.store import StoreUnavailable

    store = Store.from_url(f"sqlite:///{sqlite_path}", timeout_seconds=0.2)
    cases = CaseStore(store.engine)
    try:
        with sqlite_write_lock(sqlite_path):
            with pytest.raises(StoreUnavailable) as err:
                cases.add_note("D-1", "desk", "looked at the seals")
            assert err.value.status_code == 503
        deadline = time.monotonic() + 10 * 0.2
        while True:  # the lock released: it answers again once the stall probe has got through
            try:
                cases.add_note("D-1", "desk", "looked at the seals")
                break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "the store did not answer again after the lock was released"
                time.sleep(0.05)
        assert [n["text"] for n in cases.case("D-1")["notes"]] == ["looked at the seals"]
    finally:
        store.dispose()
