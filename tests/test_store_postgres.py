"""PostgreSQL roles: the SQL documented in docs/postgres.md, run as written, gives an application role
that can serve (keys, audit, outcomes) but can neither rewrite nor delete the audit log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from serving import migrations
from serving.roles import Principal, Role
from serving.store import AuditEvent, Store, make_engine, outcomes_frame
from tests.pg import PgCluster

DOC = Path(__file__).resolve().parents[1] / "docs" / "postgres.md"


def _sql_blocks() -> list[list[str]]:
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    return [[s.strip() for s in block.split(";\n") if s.strip().rstrip(";")] for block in blocks]


@pytest.fixture(scope="module")
def roles(pg: PgCluster) -> dict[str, str]:
    """Roles and database created exactly as the documentation says; returns the two URLs."""
    superuser, owner_defaults, owner_grants = _sql_blocks()[:3]
    pg.execute(*superuser)
    pg.execute(*owner_defaults, database="riskprof", user="riskprof_owner")
    owner_url = pg.url("riskprof", "riskprof_owner")
    engine = make_engine(owner_url)
    assert migrations.upgrade(engine) == (None, migrations.head())
    engine.dispose()
    pg.execute(*owner_grants, database="riskprof", user="riskprof_owner")
    return {"owner": owner_url, "app": pg.url("riskprof", "riskprof_app")}


def test_the_documented_blocks_are_found() -> None:
    blocks = _sql_blocks()
    assert len(blocks) == 4  # roles, owner's defaults, owner's grants after upgrade, MLflow's database
    assert any("riskprof_app" in s for s in blocks[2])


def test_application_role_serves(roles: dict[str, str]) -> None:
    store = Store.from_url(roles["app"])  # the schema check needs only SELECT
    assert store.ping()  # /ready's probe takes the locks a scoring call takes: the role may take them
    key = store.create_api_key("desk", "officer")
    principal = store.verify_api_key(key)
    assert principal is not None
    store.append_audit_events([AuditEvent.of(principal, "score", "m", "1", [
        {"declaration_id": "D-1", "risk_score": 0.2, "lane": "green"}])])
    assert list(store.audit_frame()["declaration_id"]) == ["D-1"]
    assert store.record_outcomes([{"declaration_id": "D-1", "inspected_date": "2023-06-02", "inspected": True,
                                   "hit": False}], "desk") == ["created"]
    assert list(outcomes_frame(store)["declaration_id"]) == ["D-1"]
    # the working columns it may update: an alert acknowledged, a case assigned and moved on (both were
    # "permission denied" with the documented grants: a 500 on the alert's ack and the case workflow)
    from serving.case_store import CaseStore
    from serving.profile_store import Actor, ProfileStore

    profiles = ProfileStore(store.engine, {})
    assert profiles.create_alerts([{"declaration_id": "D-1", "kind": "profile", "rule_id": "P-1", "version": 1,
                                    "criterion": "c", "risk_score": 0.2, "lane": "red", "source": "api"}]) == 1
    alert_id = int(profiles.list_alerts(status="open")[0]["id"])
    assert profiles.ack_alert(alert_id, Actor("desk", "officer"))["status"] == "acked"
    cases = CaseStore(store.engine)
    cases.update("D-1", "desk", assignee="desk")
    assert cases.update("D-1", "desk", status="under review")["status"] == "under review"
    cases.add_note("D-1", "desk", "opened the container")
    assert store.revoke_key("desk")  # and api_keys.revoked_at
    assert not store.key_active(principal.key_id)
    store.dispose()


@pytest.mark.parametrize("statement", [
    "UPDATE alerts SET rule_id = 'other'", "DELETE FROM alerts", "UPDATE case_work SET declaration_id = 'x'",
    "UPDATE case_notes SET text = 'rewritten'", "DELETE FROM case_notes",
])
def test_application_role_updates_only_the_working_columns(roles: dict[str, str], statement: str) -> None:
    store = Store.from_url(roles["app"])
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), store.engine.begin() as conn:
        conn.execute(sa.text(statement))
    store.dispose()


@pytest.mark.parametrize("statement", [
    "UPDATE audit_items SET lane = 'red'", "DELETE FROM audit_items", "TRUNCATE audit_items",
    "UPDATE audit_events SET key_name = 'someone else'", "DELETE FROM audit_events",
    "DELETE FROM outcomes", "UPDATE outcomes SET hit = true", "UPDATE api_keys SET role = 'admin'",
    "DELETE FROM api_keys", "DROP TABLE audit_items", "CREATE TABLE mine (x int)",
    "DROP TRIGGER audit_items_append_only ON audit_items",
])
def test_application_role_cannot_rewrite_history(roles: dict[str, str], statement: str) -> None:
    store = Store.from_url(roles["app"])
    store.append_audit_events([AuditEvent.of(Principal("k", Role.officer), "score", "m", "1", [
        {"declaration_id": "D-2", "risk_score": 0.9, "lane": "red"}])])
    before = len(store.audit_frame())
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied|must be owner"), \
            store.engine.begin() as conn:
        conn.execute(sa.text(statement))
    assert len(store.audit_frame()) == before
    store.dispose()


@pytest.mark.parametrize("statement", ["UPDATE audit_items SET lane = 'red'", "DELETE FROM audit_events"])
def test_even_the_owner_meets_the_trigger(roles: dict[str, str], statement: str) -> None:
    engine = make_engine(roles["owner"])
    Store(engine).append_audit_events([AuditEvent.of(Principal("k", Role.officer), "score", "m", "1", [
        {"declaration_id": "D-3", "risk_score": 0.1, "lane": "green"}])])  # a row for the row trigger
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text(statement))
    engine.dispose()
