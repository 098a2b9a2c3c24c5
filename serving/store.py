"""The service's own store (SQLAlchemy): API keys (hashed), the audit log and inspection outcomes.

SQLite file by default, PostgreSQL (``postgresql+psycopg://…``) or any SQLAlchemy URL by setting
``RISKPROF_DATABASE_URL``. The schema is versioned by Alembic (:mod:`serving.migrations`): a SQLite
file is migrated when opened, any other database must be at the code's revision (``riskprof db
upgrade``). The audit tables are append-only: the API only ever inserts, and a trigger refuses
UPDATE and DELETE on them (on PostgreSQL, the application's role may also only INSERT and SELECT:
docs/postgres.md). A database that cannot be reached surfaces as :class:`StoreUnavailable` (503), one that
does not answer within the API's ``RISKPROF_DB_TIMEOUT_SECONDS`` as :class:`StoreTimeout` (503), after which
:class:`StallGuard` refuses the next calls at once until it answers again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from serving.errors import ConflictError, FieldProblem, ServiceError
from serving.roles import Principal, Role
from settings import redacted_url

log = logging.getLogger("riskprof.serving")

KEY_PREFIX = "rpk"
_KEY_ID = re.compile(r"[0-9a-f]{1,32}")  # a key's id: hex (``secrets.token_hex``), at most the column's length
_CHUNK = 500

metadata = sa.MetaData()

KEY_NAME_LENGTH = 200  # characters of a key's name (the column's length)
api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key_id", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(KEY_NAME_LENGTH), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("salt", sa.String(64), nullable=False),
    sa.Column("key_hash", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)

audit_events = sa.Table(
    "audit_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(32), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("key_name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("endpoint", sa.String(100), nullable=False),
    sa.Column("model_name", sa.String(200), nullable=False),
    sa.Column("model_version", sa.String(50), nullable=False),
    sa.Column("n_items", sa.Integer, nullable=False),
    sa.Column("params", sa.JSON, nullable=True),
)

audit_items = sa.Table(
    "audit_items", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_uid", sa.String(32), sa.ForeignKey("audit_events.uid"), nullable=False, index=True),
    sa.Column("item", sa.Integer, nullable=False),
    sa.Column("declaration_id", sa.String(200), nullable=False, index=True),
    sa.Column("risk_score", sa.Float, nullable=False),
    sa.Column("lane", sa.String(10), nullable=False),
    sa.Column("selection", sa.String(10), nullable=True),
    sa.Column("selection_probability", sa.Float, nullable=True),
    sa.Column("reasons", sa.JSON, nullable=True),
)

# which risk profiles and watch lists (id and version) matched each audited declaration: what
# profile effectiveness is computed from; append-only like the rest of the audit log
audit_rule_hits = sa.Table(
    "audit_rule_hits", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("event_uid", sa.String(32), sa.ForeignKey("audit_events.uid"), nullable=False, index=True),
    sa.Column("item", sa.Integer, nullable=False),
    sa.Column("declaration_id", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("rule_id", sa.String(64), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
)

outcomes = sa.Table(
    "outcomes", metadata,
    sa.Column("declaration_id", sa.String(200), primary_key=True),
    sa.Column("inspected_date", sa.Date, nullable=False),
    sa.Column("inspected", sa.Boolean, nullable=False),
    sa.Column("selection_source", sa.String(20), nullable=True),
    sa.Column("selection_probability", sa.Float, nullable=True),
    sa.Column("hit", sa.Boolean, nullable=False),
    sa.Column("case_id", sa.String(200), nullable=True),
    sa.Column("revenue", sa.Float, nullable=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("recorded_by", sa.String(200), nullable=False),
)

OUTCOME_FIELDS = ("declaration_id", "inspected_date", "inspected", "selection_source", "selection_probability",
                  "hit", "case_id", "revenue")

def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class StoreURLError(ValueError):
    """A database URL that cannot even be opened: not a URL, an unknown database, a driver that is not
    installed, or a SQLite file whose folder cannot be made. The message names the URL (password hidden)
    and the cause. (The CLI also refuses SQLite in memory: ``riskprof.cli_db.checked_url``.)"""


def make_engine(url: str, *, wal_autocheckpoint: bool = True, timeout: float | None = None) -> Engine:
    """:func:`_make_engine`, with an unusable URL raised as :class:`StoreURLError`."""
    try:
        return _make_engine(url, wal_autocheckpoint=wal_autocheckpoint, timeout=timeout)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError, OSError) as exc:
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, ImportError):
            cause = f"its database driver is not installed ({cause})"
        raise StoreURLError(f"the database URL {redacted_url(url)} cannot be used: {cause}") from None


# engine -> the guard of an engine made with a ``timeout`` (:class:`StallGuard`)
_GUARDS: weakref.WeakKeyDictionary[Engine, StallGuard] = weakref.WeakKeyDictionary()


def _make_engine(url: str, *, wal_autocheckpoint: bool = True, timeout: float | None = None) -> Engine:
    """An engine for ``url``; SQLite gets its folder created, WAL and a busy timeout (several workers).

    ``wal_autocheckpoint=False``: SQLite commits never checkpoint the WAL into the database file (its two
    fsyncs would fall on whichever request commits the 1,000th page); :class:`WalCheckpointer` does it.

    ``timeout`` (seconds; the API's ``RISKPROF_DB_TIMEOUT_SECONDS``): the longest a statement waits, set once
    per connection (nothing per call): SQLite's busy timeout; PostgreSQL's ``lock_timeout`` and
    ``statement_timeout`` (and its connect timeout); the wait for a free pooled connection. ``None``: SQLite
    waits 30 s for a lock, PostgreSQL without limit (the batch jobs and ``db upgrade``).
    """
    kwargs: dict[str, Any] = {}
    if timeout is not None:
        kwargs["pool_timeout"] = timeout
    busy_ms = 30_000 if timeout is None else max(1, round(timeout * 1000))
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_ms / 1000}
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["poolclass"] = StaticPool
            kwargs.pop("pool_timeout", None)  # one shared connection: no pool to wait for
    else:
        # a connection left over from before a database restart is replaced, not handed to a request
        kwargs["pool_pre_ping"] = True
        if url.startswith("postgresql"):
            # an unreachable server fails a request within seconds (503) instead of hanging it
            connect_args: dict[str, Any] = {"connect_timeout": 5 if timeout is None else max(2, math.ceil(timeout))}
            if timeout is not None:
                # server-side, from the connection's start: a statement waiting for a lock (someone's open
                # transaction, an ALTER TABLE queued) or running too long is cancelled by the server
                ms = max(1, round(timeout * 1000))
                given = sa.engine.make_url(url).query.get("options")
                given = " ".join(given) if isinstance(given, tuple) else given or ""
                connect_args["options"] = f"{given} -c lock_timeout={ms} -c statement_timeout={ms}".strip()
            kwargs["connect_args"] = connect_args
    engine = sa.create_engine(url, **kwargs)
    if timeout is not None:
        _GUARDS[engine] = StallGuard(engine, timeout)
    if engine.dialect.name == "sqlite":
        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            pragmas = ["journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", f"busy_timeout={busy_ms}"]
            if not wal_autocheckpoint:
                pragmas.append("wal_autocheckpoint=0")
            for pragma in pragmas:
                cur.execute(f"PRAGMA {pragma}")
            cur.close()
    return engine


class StoreUnavailable(ServiceError):
    """The database cannot be reached: nothing is decided without a place to record it."""

    status_code = 503


class StoreTimeout(StoreUnavailable):
    """The database did not answer a call within the store's timeout (a lock held elsewhere, a busy file)."""


_P = ParamSpec("_P")
_R = TypeVar("_R")
_UNREACHABLE = (sa.exc.OperationalError, sa.exc.InterfaceError)
# PostgreSQL's lock_not_available (lock_timeout) and query_canceled (statement_timeout)
_PG_TIMEOUTS = frozenset({"55P03", "57014"})
_SQLITE_BUSY = 5  # "database is locked": the busy timeout ran out


def timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is a wait that ran out: a lock or statement timeout, a busy SQLite file, no pooled
    connection free, no answer to a connection attempt."""
    if isinstance(exc, sa.exc.TimeoutError):
        return True
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) in _PG_TIMEOUTS:
        return True
    if (getattr(orig, "sqlite_errorcode", 0) or 0) & 0xFF == _SQLITE_BUSY:
        return True
    return "timeout expired" in str(orig)  # psycopg: the server did not answer within connect_timeout


def _timeout_error(timeout: float | None, store_error: str) -> StoreTimeout:
    within = f"within {timeout:g} s" if timeout is not None else "in time"
    return StoreTimeout(f"the serving store (database) did not answer {within} (a lock held by another session "
                        "or process, or the database overloaded), so nothing was decided or recorded; retry "
                        "shortly", store_error=store_error)


class StallGuard:
    """While an engine's database is stalled, its store calls are refused at once (the same 503) rather than
    each waiting out the timeout.

    A one-worker API makes a small request's store calls on its event loop: a stalled call holds the loop,
    and every request behind it (``/health`` too) waits. So once a call has timed out (:meth:`trip`), the
    calls that follow are refused until a thread's :func:`probe_store` (the locks a scoring call takes) gets
    through. Calls read one module-level set per call (:data:`_STALLED`, empty while all is well).
    """

    retry_seconds = 0.5  # between probes that failed at once

    def __init__(self, engine: Engine, timeout: float):
        self.timeout = timeout
        self.store_error: str | None = None  # what the call that timed out ran into; None: not stalled
        self._engine = weakref.ref(engine)  # the guard lives as long as its engine (_GUARDS), no longer
        self._lock = threading.Lock()
        self._prober: threading.Thread | None = None
        self._closed = threading.Event()

    @property
    def stalled(self) -> bool:
        return self.store_error is not None

    def error(self) -> StoreTimeout:
        return _timeout_error(self.timeout, self.store_error or "StoreTimeout")

    def trip(self, store_error: str) -> None:
        """A call timed out: refuse the next ones until a probe gets through."""
        with self._lock:
            if self._closed.is_set():
                return
            if self.store_error is None:
                log.warning("serving store stalled (%s): calls are refused until it answers again", store_error)
                self.store_error = store_error
            _STALLED.add(self)
            if self._prober is None:
                self._prober = threading.Thread(target=self._probe_until_answered, name="store-stall-probe",
                                                daemon=True)
                self._prober.start()

    def _probe_until_answered(self) -> None:
        while not self._closed.is_set():
            engine = self._engine()
            if engine is None:
                break
            try:
                probe_store(engine)
            except Exception:  # noqa: BLE001 - still stalled (or down): try again
                del engine
                self._closed.wait(self.retry_seconds)
                continue
            with self._lock:
                self.store_error = None
                _STALLED.discard(self)
                self._prober = None
            log.warning("serving store answering again")
            return
        with self._lock:
            self._prober = None

    def close(self) -> None:
        """Stop probing (a probe in flight ends within the timeout, on a daemon thread: not waited for, so a
        command that fails on a stalled store exits at once)."""
        with self._lock:
            self._closed.set()
            self.store_error = None
            _STALLED.discard(self)


# the guards stalled now: what every call reads first (an empty set while the database answers)
_STALLED: set[StallGuard] = set()


def _guard_of(store: Any) -> StallGuard | None:
    engine = getattr(store, "engine", None)
    return _GUARDS.get(engine) if engine is not None else None


def _refuse_if_stalled(store: Any) -> None:
    guard = _guard_of(store)
    if guard is not None and guard.stalled:
        raise guard.error()


def probe_store(engine: Engine) -> None:
    """Raise unless a scoring call would get its locks now: on PostgreSQL, the tables it reads (key,
    profiles' revision) and writes (audit, alerts), each lock taken ``NOWAIT`` (a probe never queues behind a
    lock, nor holds one while waiting for another); on a SQLite file, the write lock (within its busy
    timeout: readers never wait in WAL mode, writers wait for each other); elsewhere ``SELECT 1``."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            quote = engine.dialect.identifier_preparer.quote
            read = ", ".join(quote(t) for t in ("api_keys", "profile_changes"))
            write = ", ".join(quote(t) for t in ("audit_events", "audit_items", "audit_rule_hits", "alerts"))
            conn.exec_driver_sql(f"LOCK TABLE {read} IN ACCESS SHARE MODE NOWAIT")
            conn.exec_driver_sql(f"LOCK TABLE {write} IN ROW EXCLUSIVE MODE NOWAIT")
            conn.rollback()
        elif engine.dialect.name == "sqlite" and not isinstance(engine.pool, StaticPool):
            driver = conn.connection.driver_connection
            assert driver is not None
            with driver_errors(engine.dialect, "BEGIN IMMEDIATE"):
                driver.execute("BEGIN IMMEDIATE")
                driver.rollback()
        else:
            conn.execute(sa.text("SELECT 1"))


def _reachable(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Connection failures (database down, restarting) become :class:`StoreUnavailable`; a wait that ran out
    (lock, busy file, pool) :class:`StoreTimeout`, and the store's :class:`StallGuard` refuses the calls
    that follow until the database answers again. Both are 503s: nothing is decided or recorded."""
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if _STALLED:  # one read of a module global per call while all is well
            _refuse_if_stalled(args[0] if args else None)
        try:
            return fn(*args, **kwargs)
        except (*_UNREACHABLE, sa.exc.TimeoutError) as exc:
            log.warning("serving store unavailable in %s: %s", fn.__name__, str(exc).splitlines()[0][:300])
            orig = getattr(exc, "orig", None)
            if timed_out(exc):
                guard = _guard_of(args[0] if args else None)
                store_error = type(orig or exc).__name__
                if guard is not None:
                    guard.trip(store_error)
                raise _timeout_error(guard.timeout if guard is not None else None, store_error) from None
            raise StoreUnavailable("the serving store (database) is unavailable, so nothing can be decided or "
                                   "recorded; retry shortly", store_error=type(orig or exc).__name__) from None
        except sa.exc.DBAPIError as exc:
            if exc.connection_invalidated:
                raise StoreUnavailable("the serving store (database) connection was lost; retry shortly",
                                       store_error=type(exc.orig).__name__) from None
            raise

    return wrapper


def _event_row(ev: AuditEvent, n_items: int) -> dict[str, Any]:
    return {"uid": ev.uid, "created_at": ev.created_at, "key_name": ev.key_name, "role": ev.role,
            "endpoint": ev.endpoint, "model_name": ev.model_name, "model_version": ev.model_version,
            "n_items": n_items, "params": ev.params}


def _item_rows(uid: str, items: Sequence[Mapping[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    """``audit_items`` rows of an event's items (numbered from ``start``)."""
    return [{"event_uid": uid, "item": start + i, "declaration_id": it["declaration_id"],
             "risk_score": it["risk_score"], "lane": it["lane"], "selection": it.get("selection"),
             "selection_probability": it.get("selection_probability"), "reasons": it.get("reasons")}
            for i, it in enumerate(items)]


_ITEM_FIELDS = ("declaration_id", "risk_score", "lane", "selection", "selection_probability", "reasons")


def _item_columns(uid: str, columns: Mapping[str, Sequence[Any]], start: int = 0) -> dict[str, Sequence[Any]]:
    """``audit_items`` columns of an event's items given as columns (``_ITEM_FIELDS``, ``rule_hits``)."""
    n = len(columns["declaration_id"])
    return {"event_uid": [uid] * n, "item": range(start, start + n),
            **{f: columns[f] if f in columns else [None] * n for f in _ITEM_FIELDS}}


def _hit_columns(uid: str, columns: Mapping[str, Sequence[Any]], start: int = 0) -> list[dict[str, Any]]:
    """``audit_rule_hits`` rows of a chunk's hits given flat: ``hit_item`` (the item's position in
    the chunk), ``hit_kind``, ``hit_id``, ``hit_version``, one entry per hit in item order."""
    items = columns.get("hit_item")
    if not items:
        return []
    ids = columns["declaration_id"]
    return [{"event_uid": uid, "item": start + i, "declaration_id": ids[i], "kind": k, "rule_id": r, "version": v}
            for i, k, r, v in zip(items, columns["hit_kind"], columns["hit_id"], columns["hit_version"], strict=True)]


def _hit_rows(uid: str, items: Sequence[Mapping[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    """``audit_rule_hits`` rows: one per rule that matched an item."""
    return [{"event_uid": uid, "item": start + i, "declaration_id": it["declaration_id"], "kind": h["kind"],
             "rule_id": h["id"], "version": h["version"]}
            for i, it in enumerate(items) for h in it.get("rule_hits") or ()]


def _hash_key(secret: str, salt: str) -> str:
    return hmac.new(salt.encode(), secret.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditEvent:
    """One scoring call as the audit log records it; ``created_at`` is when the call was answered."""

    created_at: dt.datetime
    key_name: str
    role: str
    endpoint: str
    model_name: str
    model_version: str
    items: Sequence[Mapping[str, Any]]
    params: dict[str, Any] | None = None
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def of(cls, principal: Principal, endpoint: str, model_name: str, model_version: str,
           items: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None = None) -> AuditEvent:
        return cls(_now(), principal.name, principal.role.value, endpoint, model_name, model_version, items,
                   dict(params) if params else None)


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    role: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None


# built once: building a statement per call costs more than SQLite takes to run it
_KEY_REVOKED_AT = sa.select(api_keys.c.revoked_at).where(api_keys.c.key_id == sa.bindparam("key_id"))
_INSERT_EVENTS = audit_events.insert()
_INSERT_ITEMS = audit_items.insert()
_INSERT_HITS = audit_rule_hits.insert()


def _none_aware(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """``process`` with its value for None worked out once: a JSON column binds None as the text
    'null', and a batch's 400,000 items without reasons paid a ``json.dumps`` each for it."""
    if process is None:
        return None
    none = process(None)

    def bind(value: Any) -> Any:
        return none if value is None else process(value)

    return bind


class _DriverInsert:
    """``table``'s INSERT run on a SQLite connection's own cursor: SQLAlchemy's compiled SQL and its own bind
    processors (the stored values are exactly a Core insert's) without its per-statement machinery, which
    costs more than SQLite takes to insert a scoring call's rows."""

    def __init__(self, table: sa.Table, dialect: sa.Dialect, statement: Any = None):
        self.dialect = dialect
        keys = [c.key for c in table.c if not c.primary_key]
        compiled = (table.insert() if statement is None else statement).compile(dialect=dialect, column_keys=keys)
        if compiled.positiontup is None:
            raise ValueError(f"{dialect.name}: not a positional paramstyle")
        self.sql = str(compiled)
        self._convert = [(k, _none_aware(table.c[k].type.dialect_impl(dialect).bind_processor(dialect)))
                         for k in compiled.positiontup]

    def run(self, conn: sa.Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert ``rows`` within ``conn``'s transaction; returns the rows inserted (an ``ON CONFLICT DO
        NOTHING`` skips count none)."""
        params = [tuple(r[k] if f is None else f(r[k]) for k, f in self._convert) for r in rows]
        return self._execute(conn, params)

    def run_columns(self, conn: sa.Connection, columns: Mapping[str, Sequence[Any]]) -> int:
        """:meth:`run` on columns (one list per column, all of one length) instead of records."""
        params = list(zip(*(columns[k] if f is None else list(map(f, columns[k])) for k, f in self._convert),
                          strict=True))
        return self._execute(conn, params)

    def _execute(self, conn: sa.Connection, params: list[tuple[Any, ...]]) -> int:
        if not params:
            return 0
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with driver_errors(self.dialect, self.sql):
                if len(params) == 1:
                    cursor.execute(self.sql, params[0])
                else:
                    cursor.executemany(self.sql, params)
                return int(cursor.rowcount)
        finally:
            cursor.close()


class _SqliteAudit:
    """The per-request statements of a SQLite store on the driver's connection (see :class:`_DriverInsert`)."""

    def __init__(self, dialect: sa.Dialect):
        self.dialect = dialect
        self.events = _DriverInsert(audit_events, dialect)
        self.items = _DriverInsert(audit_items, dialect)
        self.hits = _DriverInsert(audit_rule_hits, dialect)
        self.key_sql = str(_KEY_REVOKED_AT.compile(dialect=dialect))

    def errors(self, sql: str) -> contextlib.AbstractContextManager[None]:
        return driver_errors(self.dialect, sql)


@contextlib.contextmanager
def driver_errors(dialect: sa.Dialect, sql: str) -> Iterator[None]:
    """Driver errors as SQLAlchemy's (a locked or unreachable file is then a 503, as on the Core path)."""
    dbapi = dialect.loaded_dbapi
    try:
        yield
    except dbapi.Error as exc:
        raise sa.exc.DBAPIError.instance(sql, None, exc, dbapi.Error, dialect=dialect) from exc


class WalCheckpointer:
    """Checkpoints a SQLite store's WAL from a thread every ``interval`` seconds (``PASSIVE``: never waits
    for readers or writers), so that no request's commit pays for it. Durability is unchanged: a commit
    is in the WAL, which a restart replays, whether or not it has been checkpointed yet."""

    def __init__(self, engine: Engine, interval: float):
        self.engine = engine
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)
        self._thread.start()

    def checkpoint(self) -> None:
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.checkpoint()
            except Exception as exc:  # noqa: BLE001 - the WAL only grows until the next try
                log.warning("WAL checkpoint failed: %s", str(exc).splitlines()[0][:300])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        try:
            self.checkpoint()
        except Exception as exc:  # noqa: BLE001 - SQLite also checkpoints when the last connection closes
            log.warning("final WAL checkpoint failed: %s", str(exc).splitlines()[0][:300])


def _is_sqlite_file(url: str) -> bool:
    return url.startswith("sqlite") and ":///" in url and url.split(":///", 1)[1] not in ("", ":memory:")


class Store:
    """Keys, audit log and outcomes over one SQLAlchemy engine."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._checkpointer: WalCheckpointer | None = None
        # a one-row read outside a transaction: PostgreSQL then needs no BEGIN/ROLLBACK round trips; SQLite
        # starts no transaction for a read anyway, and switching its isolation level costs more than the read
        self._read_options: dict[str, Any] = ({} if engine.dialect.name == "sqlite"
                                              else {"isolation_level": "AUTOCOMMIT"})
        self._sqlite = _SqliteAudit(engine.dialect) if engine.dialect.name == "sqlite" else None
        self._file: tuple[Path, int, int] | None = None  # a SQLite file's path, device and inode (watch_file)

    @classmethod
    def from_url(cls, url: str, create: bool = True, checkpoint_seconds: float | None = None,
                 timeout_seconds: float | None = None) -> Store:
        """Open the store; ``create``: migrate a SQLite file to the code's schema, check any other database.

        ``checkpoint_seconds``: for a SQLite file, checkpoint its WAL from a thread this often instead of
        within the commits (a long-running server; :class:`WalCheckpointer`). ``timeout_seconds``: the
        longest a call waits for the database (:func:`make_engine`'s ``timeout``), then :class:`StoreTimeout`.
        """
        interval = checkpoint_seconds if _is_sqlite_file(url) else None
        store = cls(make_engine(url, wal_autocheckpoint=interval is None, timeout=timeout_seconds))
        if create:
            try:
                store.prepare()
            except BaseException:
                store.dispose()
                raise
        if interval is not None:
            store._checkpointer = WalCheckpointer(store.engine, interval)
        if _is_sqlite_file(url):
            store.watch_file(Path(url.split(":///", 1)[1].split("?", 1)[0]))
        return store

    def watch_file(self, path: Path) -> None:
        """A SQLite store: refuse to use it once its file is removed or replaced (checked each time a
        connection is taken from the pool, one ``stat``). The open connections would go on writing into the
        removed file: answered 2xx, recorded nowhere; then, with a new file beside the old write-ahead log,
        "disk I/O error". A pool event, not a connection event: any connection event makes SQLAlchemy
        dispatch events around every statement of the engine (+1.5 % of a scoring call's CPU here)."""
        try:
            st = path.stat()
        except OSError:
            return
        self._file = (path, st.st_dev, st.st_ino)
        sa.event.listen(self.engine.pool, "checkout", lambda *_args: self.check_file())

    def check_file(self) -> None:
        """:class:`StoreUnavailable` if the watched SQLite file is gone or is another file now."""
        if self._file is None:
            return
        path, dev, ino = self._file
        try:
            st = path.stat()
        except OSError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != (dev, ino):
            log.error("serving store file %s was %s while the service ran", path,
                      "removed" if st is None else "replaced")
            raise StoreUnavailable(f"the serving store file {path} was removed or replaced while the service ran; "
                                   "nothing can be recorded: restart the service")

    def prepare(self) -> None:
        """SQLite: create or migrate the file. Others: raise ``SchemaMismatch`` unless at the code's revision."""
        from serving import migrations

        if self.engine.dialect.name == "sqlite":
            migrations.upgrade(self.engine)
        else:
            migrations.check(self.engine)

    def create_all(self) -> None:
        """Create or migrate the schema (Alembic ``upgrade head``), whatever the database."""
        from serving import migrations

        migrations.upgrade(self.engine)

    def ping(self) -> bool:
        """Whether a scoring call would get through now (:func:`probe_store`: the locks it takes), and (a SQLite
        file) the file is still the one opened and can be written. False at once while the store is stalled
        (:class:`StallGuard`): a probe is already on it."""
        if self._file is not None and not os.access(self._file[0], os.W_OK):  # read-only: every write would fail
            return False
        guard = _GUARDS.get(self.engine)
        if guard is not None and guard.stalled:
            return False
        try:
            self.check_file()
            probe_store(self.engine)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not reachable"
            return False

    def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        guard = _GUARDS.get(self.engine)
        if guard is not None:
            guard.close()
        self.engine.dispose()

    # ---- API keys ------------------------------------------------------------------------------
    @_reachable
    def create_api_key(self, name: str, role: Role | str) -> str:
        """Store a new key (hashed) and return it; it cannot be recovered later."""
        role = Role(role)
        name = name.strip()
        if not name:
            raise ValueError("a key needs a name")
        if len(name) > KEY_NAME_LENGTH:
            raise ValueError(f"a key's name has at most {KEY_NAME_LENGTH} characters, got {len(name)}")
        if not name.isprintable():  # it is shown in lists and in the audit log, a line each
            raise ValueError("a key's name is one line of printable text (no tab, line break or control character)")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_hex(16)
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(api_keys.c.id).where(api_keys.c.name == name)).first()
            if exists:
                raise ValueError(f"a key named {name!r} already exists")
            conn.execute(api_keys.insert().values(key_id=key_id, name=name, role=role.value, salt=salt,
                                                  key_hash=_hash_key(secret, salt), created_at=_now()))
        return f"{KEY_PREFIX}_{key_id}_{secret}"

    @_reachable
    def verify_api_key(self, key: str) -> Principal | None:
        parts = key.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != KEY_PREFIX or not _KEY_ID.fullmatch(parts[1]):
            return None  # not a key this store makes (and nothing PostgreSQL would refuse, e.g. a NUL, reaches it)
        _, key_id, secret = parts
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(_hash_key(secret, row.salt), row.key_hash):
            return None
        return Principal(row.name, Role(row.role), row.key_id)

    @_reachable
    def key_active(self, key_id: str) -> bool:
        """Whether ``key_id`` exists and is not revoked: one indexed look-up, made on every request."""
        if self._sqlite is not None:
            conn = self.engine.raw_connection()
            try:
                with self._sqlite.errors(self._sqlite.key_sql):
                    found = conn.driver_connection.execute(  # type: ignore[union-attr]
                        self._sqlite.key_sql, (key_id,)).fetchone()
            finally:
                conn.close()
            return found is not None and found[0] is None
        with self.engine.connect().execution_options(**self._read_options) as c:
            row = c.execute(_KEY_REVOKED_AT, {"key_id": key_id}).first()
        return row is not None and row.revoked_at is None

    @_reachable
    def count_active_keys(self) -> int:
        with self.engine.connect() as conn:
            q = sa.select(sa.func.count()).select_from(api_keys).where(api_keys.c.revoked_at.is_(None))
            return int(conn.execute(q).scalar_one())

    @_reachable
    def list_keys(self) -> list[KeyInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.id)).all()
        return [KeyInfo(r.key_id, r.name, r.role, r.created_at, r.revoked_at) for r in rows]

    @_reachable
    def revoke_key(self, name: str) -> bool:
        with self.engine.begin() as conn:
            res = conn.execute(api_keys.update().where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                               .values(revoked_at=_now()))
        return bool(res.rowcount)

    # ---- audit ---------------------------------------------------------------------------------
    def append_audit(self, principal: Principal, endpoint: str, model_name: str, model_version: str,
                     items: Sequence[Mapping[str, Any]], params: Mapping[str, Any] | None = None) -> str:
        """One event for the call plus one row per declaration (id, score, lane, selection, reasons)."""
        event = AuditEvent.of(principal, endpoint, model_name, model_version, items, params)
        self.append_audit_events([event])
        return event.uid

    @_reachable
    def append_audit_events(self, events: Sequence[AuditEvent],
                            also: Callable[[sa.Connection], object] | None = None) -> None:
        """Write several calls in one transaction: two multi-row inserts whatever their number; ``also``
        writes more in the same transaction (a call's alerts: one commit per call, not two)."""
        if not events:
            return
        heads = [_event_row(ev, len(ev.items)) for ev in events]
        rows = [r for ev in events for r in _item_rows(ev.uid, ev.items)]
        hits = [h for ev in events for h in _hit_rows(ev.uid, ev.items)]
        with self.engine.begin() as conn:
            self._insert_audit(conn, heads, rows, hits)
            if also is not None:
                also(conn)

    def _insert_audit(self, conn: sa.Connection, heads: Sequence[Mapping[str, Any]],
                      rows: Sequence[Mapping[str, Any]], hits: Sequence[Mapping[str, Any]]) -> None:
        """Audit rows within ``conn``'s transaction: on SQLite through the driver's cursor
        (:class:`_DriverInsert`), elsewhere SQLAlchemy's multi-row inserts."""
        if self._sqlite is not None:
            q = self._sqlite
            for insert, values in ((q.events, heads), (q.items, rows), (q.hits, hits)):
                insert.run(conn, values)
            return
        for statement, values in ((_INSERT_EVENTS, heads), (_INSERT_ITEMS, rows), (_INSERT_HITS, hits)):
            if values:
                conn.execute(statement, values)

    @_reachable
    def append_audit_columns(self, event: AuditEvent, n_items: int,
                             chunks: Iterable[Mapping[str, Sequence[Any]]]) -> int:
        """One event of ``n_items`` items arriving in chunks (a nightly batch's million items without
        holding them all), written in one transaction: the event is in the log with all its items or
        not at all (the log is append-only, so the count is known first and checked at the end).
        ``event.items`` is ignored; returns the number of items written.

        Each chunk holds its items as columns (``declaration_id``, ``risk_score``, ``lane``,
        ``selection``, ``selection_probability``, ``reasons``) and its rule hits flat (``hit_item``,
        ``hit_kind``, ``hit_id``, ``hit_version``; optional), as a batch output is read; on SQLite
        they reach the driver without a dict per item."""
        n = 0
        with self.engine.begin() as conn:
            self._insert_audit(conn, [_event_row(event, n_items)], (), ())
            for columns in chunks:
                items = _item_columns(event.uid, columns, n)
                hits = _hit_columns(event.uid, columns, n)
                if self._sqlite is not None:
                    self._sqlite.items.run_columns(conn, items)
                    self._insert_audit(conn, (), (), hits)
                else:
                    rows = [dict(zip(items, values, strict=True)) for values in zip(*items.values(), strict=True)]
                    self._insert_audit(conn, (), rows, hits)
                n += len(columns["declaration_id"])
            if n != n_items:
                raise ValueError(f"audit event {event.uid}: {n} items arrived, {n_items} announced (nothing written)")
        return n

    @_reachable
    def selections_frame(self) -> pd.DataFrame:
        """What monitoring reads of the audit log: per scored item ``declaration_id``, ``created_at``,
        ``risk_score``, ``lane``, ``selection``, ``selection_probability`` (newest last), the rows of
        :meth:`audit_frame` without its other columns (the reasons' JSON above all) and built from
        tuples rather than a dict per row: the monitoring page reads every item ever scored."""
        q = (sa.select(audit_items.c.declaration_id, audit_events.c.created_at, audit_items.c.risk_score,
                       audit_items.c.lane, audit_items.c.selection, audit_items.c.selection_probability)
             .select_from(audit_events.join(audit_items, audit_items.c.event_uid == audit_events.c.uid))
             .order_by(audit_events.c.id, audit_items.c.item))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return pd.DataFrame.from_records(rows, columns=list(q.selected_columns.keys()), coerce_float=False)

    def audit_frame(self) -> pd.DataFrame:
        """The audit log joined per declaration (newest last)."""
        q = (sa.select(audit_events.c.uid.label("event_uid"), audit_events.c.created_at, audit_events.c.key_name,
                       audit_events.c.role, audit_events.c.endpoint, audit_events.c.model_name,
                       audit_events.c.model_version, audit_items.c.item, audit_items.c.declaration_id,
                       audit_items.c.risk_score, audit_items.c.lane, audit_items.c.selection,
                       audit_items.c.selection_probability, audit_items.c.reasons)
             .select_from(audit_events.join(audit_items, audit_items.c.event_uid == audit_events.c.uid))
             .order_by(audit_events.c.id, audit_items.c.item))
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return pd.DataFrame([dict(r) for r in rows], columns=list(q.selected_columns.keys()))

    @_reachable
    def scored_declaration_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` the service has scored (they are in the audit log; an indexed look-up)."""
        wanted = list(dict.fromkeys(ids))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start:start + _CHUNK]
                q = sa.select(audit_items.c.declaration_id).where(audit_items.c.declaration_id.in_(chunk)).distinct()
                found.update(conn.execute(q).scalars())
        return found

    # ---- outcomes ------------------------------------------------------------------------------
    @_reachable
    def record_outcomes(self, records: Sequence[Mapping[str, Any]], recorded_by: str) -> list[str]:
        """Insert outcomes; per item ``"created"`` or ``"unchanged"`` (same values sent again).

        A declaration already holding *different* values is a conflict: nothing is written and
        :class:`ConflictError` names every such item.
        """
        for _attempt in range(3):
            try:
                return self._record_outcomes(records, recorded_by)
            except IntegrityError:  # a concurrent request inserted one of these ids first: re-check
                continue
        return self._record_outcomes(records, recorded_by)

    def _record_outcomes(self, records: Sequence[Mapping[str, Any]], recorded_by: str) -> list[str]:
        rows = [_outcome_row(r) for r in records]
        ids = list(dict.fromkeys(r["declaration_id"] for r in rows))
        now = _now()
        with self.engine.begin() as conn:
            existing: dict[str, dict[str, Any]] = {}
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start:start + _CHUNK]
                q = sa.select(*[outcomes.c[f] for f in OUTCOME_FIELDS]).where(outcomes.c.declaration_id.in_(chunk))
                for r in conn.execute(q).mappings():
                    existing[r["declaration_id"]] = _outcome_row(dict(r))
            status: list[str] = []
            problems: list[FieldProblem] = []
            new: dict[str, dict[str, Any]] = {}
            for i, row in enumerate(rows):
                key = row["declaration_id"]
                before = existing.get(key, new.get(key))
                if before is None:
                    new[key] = row
                    status.append("created")
                elif before == row:
                    status.append("unchanged")
                else:
                    diff = [f for f in OUTCOME_FIELDS if before[f] != row[f]]
                    # an earlier item of this request is not recorded (nothing is, on a conflict): say which
                    where = ("is already recorded for this declaration" if key in existing else
                             f"is given for this declaration earlier in this request (item "
                             f"{next(j for j, r in enumerate(rows) if r['declaration_id'] == key)})")
                    problems.append(FieldProblem(
                        "declaration_id", f"an outcome with different values {where} (differs in {diff}); "
                                          "outcomes are not overwritten", item=i, value=key, has_value=True))
                    status.append("conflict")
            if problems:
                raise ConflictError(problems, "conflicting outcomes")
            if new:
                conn.execute(outcomes.insert(), [{**r, "recorded_at": now, "recorded_by": recorded_by}
                                                 for r in new.values()])
        return status


def _outcome_row(r: Mapping[str, Any]) -> dict[str, Any]:
    out = {f: r.get(f) for f in OUTCOME_FIELDS}
    d = out["inspected_date"]
    if isinstance(d, dt.datetime):
        out["inspected_date"] = d.date()
    elif isinstance(d, str):
        out["inspected_date"] = dt.date.fromisoformat(d[:10])
    for f in ("selection_probability", "revenue"):
        v = out[f]
        out[f] = None if v is None else float(v)
    for f in ("inspected", "hit"):
        out[f] = bool(out[f])
    return out


def outcomes_frame(source: Engine | Store | str | None = None) -> pd.DataFrame:
    """Stored outcomes as a table in the OUTCOME contract (canonical types), sorted by declaration id.

    ``source``: an engine, a store or a SQLAlchemy URL; by default the configured serving store
    (``RISKPROF_DATABASE_URL``, else ``<models_dir>/serving.db``). A store that holds no outcome
    table yet gives an empty table.
    """
    from features.contracts import OUTCOME, validate_table

    if source is None:
        from serving.settings import get_serving_settings

        source = get_serving_settings().resolved_database_url

    own = isinstance(source, str)
    engine = make_engine(source) if isinstance(source, str) else source.engine if isinstance(source, Store) else source
    q = sa.select(*[outcomes.c[f] for f in OUTCOME_FIELDS]).order_by(outcomes.c.declaration_id)
    try:
        if not sa.inspect(engine).has_table(outcomes.name):
            rows: list[dict[str, Any]] = []
        else:
            with engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(q).mappings()]
    finally:
        if own:
            engine.dispose()
    frame = pd.DataFrame(rows, columns=list(OUTCOME_FIELDS))
    frame["inspected_date"] = pd.to_datetime(frame["inspected_date"])
    return validate_table(frame, OUTCOME, source="outcome store")



class AuditWriter:
    """Writes audit events from a background thread, all the calls of an interval in one transaction.

    ``submit`` only appends to a list (the request neither waits for the database nor wakes a
    thread); the writer wakes every ``interval`` seconds. When ``max_pending`` events wait, ``submit``
    blocks, so a slow database slows scoring down rather than losing audit rows. A failed write is
    retried with back-off; ``close`` (at shutdown) writes everything still pending.
    """

    def __init__(self, store: Store, interval: float = 0.05, max_pending: int = 50_000):
        self.store = store
        self.interval = interval
        self.max_pending = max_pending
        self._pending: list[AuditEvent] = []
        self._cond = threading.Condition(threading.Lock())
        self._submitted = 0
        self._written = 0
        self._stop = threading.Event()
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def submit(self, event: AuditEvent) -> None:
        with self._cond:
            while len(self._pending) >= self.max_pending:
                self._cond.wait(1.0)
            self._pending.append(event)
            self._submitted += 1

    @property
    def backlog(self) -> int:
        with self._cond:
            return self._submitted - self._written

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every event submitted so far is written; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            while self._written < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, self.interval))
        return True

    def close(self, timeout: float = 60.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            stopping = self._stop.wait(self.interval)
            with self._cond:
                batch, self._pending = self._pending, []
            for start in range(0, len(batch), 500):
                self._write(batch[start:start + 500], final=stopping)
            with self._cond:
                self._written += len(batch)
                self._cond.notify_all()
            if stopping:
                with self._cond:
                    if not self._pending:
                        return

    def _write(self, batch: list[AuditEvent], final: bool) -> None:
        delay = 0.2
        attempt = 0
        while True:
            try:
                self.store.append_audit_events(batch)
                return
            except Exception:  # noqa: BLE001 - keep the rows and retry; never kill the writer
                attempt += 1
                self.failures += 1
                log.exception("audit write failed (attempt %d, %d calls waiting)", attempt, len(batch))
                if final and attempt >= 5:
                    log.error("giving up on %d audit events at shutdown", len(batch))
                    return
                time.sleep(delay)
                delay = min(delay * 2, 5.0)


# the profile tables (serving.profile_store) and the workbench's case tables (serving.case_store) belong
# to this metadata: migrations and checks see them
import serving.case_store  # noqa: E402,F401
import serving.profile_store  # noqa: E402,F401
