"""The serving store's fast paths keep their meaning: WAL checkpoints off the request path, one-row reads."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from serving.roles import Principal, Role
from serving.store import AuditEvent, Store, StoreUnavailable


def _event(uid_seed: int) -> AuditEvent:
    items = [{"declaration_id": f"D-{uid_seed}", "risk_score": 0.5, "lane": "yellow", "reasons": [{"feature": "x"}]}]
    return AuditEvent.of(Principal("k", Role.officer), "score", "m", "1", items)


def _pragma(store: Store, name: str) -> list[tuple[int, ...]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.exec_driver_sql(f"PRAGMA {name}")]


def test_a_server_store_leaves_checkpoints_to_its_thread_and_others_keep_sqlite_defaults(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serving.db'}"
    server = Store.from_url(url, checkpoint_seconds=3600)  # the thread will not run on its own during the test
    plain = Store.from_url(url)
    try:
        assert _pragma(server, "wal_autocheckpoint") == [(0,)]
        assert _pragma(plain, "wal_autocheckpoint") == [(1000,)]
        assert any(t.name == "wal-checkpointer" for t in threading.enumerate())
        for i in range(50):
            server.append_audit_events([_event(i)])
        assert _pragma(server, "wal_checkpoint(PASSIVE)")[0][1] > 0  # commits left frames in the WAL
        server._checkpointer.checkpoint()  # type: ignore[union-attr]
        busy, in_wal, done = _pragma(server, "wal_checkpoint(PASSIVE)")[0]
        assert busy == 0 and in_wal == done  # everything is in the database file
        assert len(plain.audit_frame()) == 50  # another connection (a CLI, a worker) reads every committed row
    finally:
        server.dispose()
        plain.dispose()
    assert not any(t.name == "wal-checkpointer" for t in threading.enumerate())


def test_in_memory_and_non_sqlite_stores_get_no_checkpointer(tmp_path: Path) -> None:
    store = Store.from_url("sqlite:///:memory:", checkpoint_seconds=0.01)
    try:
        assert store._checkpointer is None
        store.append_audit_events([_event(1)])
        assert len(store.audit_frame()) == 1
    finally:
        store.dispose()


def test_revocation_by_another_store_is_seen_by_the_next_read(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serving.db'}"
    server = Store.from_url(url, checkpoint_seconds=0.01)
    cli = Store.from_url(url)
    try:
        key = cli.create_api_key("desk", "officer")
        principal = server.verify_api_key(key)
        assert principal is not None and server.key_active(principal.key_id)
        assert not server.key_active("no-such-key")
        with server.engine.begin() as conn:  # a write through the server's own pool in between
            conn.execute(sa.text("SELECT 1"))
        assert cli.revoke_key("desk")
        assert not server.key_active(principal.key_id)
    finally:
        server.dispose()
        cli.dispose()


def _stored(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every audit row as SQLite holds it: each value with its storage class (text, real, null, ...)."""
    import sqlite3

    out = {}
    with contextlib.closing(sqlite3.connect(url.split(":///", 1)[1])) as db:
        for table in ("audit_events", "audit_items", "audit_rule_hits"):
            cols = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
            select = ", ".join(f"{c}, typeof({c})" for c in cols)
            out[table] = db.execute(f"SELECT {select} FROM {table} ORDER BY id").fetchall()
    return out


def test_the_sqlite_driver_path_stores_exactly_what_a_core_insert_stores(tmp_path: Path) -> None:
    items = [
        {"declaration_id": "D-1", "risk_score": 0.25, "lane": "red", "selection": "rule", "selection_probability": 1,
         "reasons": [{"family": "route", "contribution": 0.1, "text": "route CN → YE"}],
         "rule_hits": [{"kind": "profile", "id": "P-1", "version": 2}, {"kind": "watchlist", "id": "W", "version": 1}]},
        {"declaration_id": "D-2", "risk_score": 0.5, "lane": "green", "reasons": None, "rule_hits": []},
        {"declaration_id": "D-3", "risk_score": 1, "lane": "yellow"},
    ]
    one = AuditEvent.of(Principal("k", Role.officer), "score", "m", "1", items[:1])
    many = AuditEvent.of(Principal("a", Role.analyst), "rank", "m", "2", items, {"capacity": "5%", "seed": 1})
    plain = _event(7)
    urls = {}
    for path in ("driver", "core"):
        urls[path] = f"sqlite:///{tmp_path / f'{path}.db'}"
        store = Store.from_url(urls[path], checkpoint_seconds=3600)
        if path == "core":
            store._sqlite = None  # the SQLAlchemy Core statements every other database uses
        try:
            store.append_audit_events([one])
            store.append_audit_events([many, plain])
        finally:
            store.dispose()
    driver, core = _stored(urls["driver"]), _stored(urls["core"])
    assert len(driver["audit_items"]) == 5 and len(driver["audit_rule_hits"]) == 4
    assert driver == core


def test_driver_errors_surface_as_store_unavailable_like_core_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serving.db'}"
    store = Store.from_url(url)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit_items RENAME TO audit_items_gone"))
        with pytest.raises(StoreUnavailable):
            store.append_audit_events([_event(1)])
        with store.engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE api_keys RENAME TO api_keys_gone"))
        with pytest.raises(StoreUnavailable):
            store.key_active("x")
    finally:
        store.dispose()
