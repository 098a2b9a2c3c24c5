"""Initial schema: API keys, the append-only audit log (events and items) and outcomes.

The store as it was before migrations existed; a store created then (same tables, no
``alembic_version``) is stamped at this revision by ``riskprof db upgrade``.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

AUDIT_TABLES = ("audit_events", "audit_items")
APPEND_ONLY = "the audit log is append-only"


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("salt", sa.String(64), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("model_name", sa.String(200), nullable=False),
        sa.Column("model_version", sa.String(50), nullable=False),
        sa.Column("n_items", sa.Integer, nullable=False),
        sa.Column("params", sa.JSON, nullable=True),
    )
    op.create_index("ix_audit_events_created_at", "audit_events", ["created_at"])
    op.create_table(
        "audit_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_uid", sa.String(32), sa.ForeignKey("audit_events.uid"), nullable=False),
        sa.Column("item", sa.Integer, nullable=False),
        sa.Column("declaration_id", sa.String(200), nullable=False),
        sa.Column("risk_score", sa.Float, nullable=False),
        sa.Column("lane", sa.String(10), nullable=False),
        sa.Column("selection", sa.String(10), nullable=True),
        sa.Column("selection_probability", sa.Float, nullable=True),
        sa.Column("reasons", sa.JSON, nullable=True),
    )
    op.create_index("ix_audit_items_event_uid", "audit_items", ["event_uid"])
    op.create_index("ix_audit_items_declaration_id", "audit_items", ["declaration_id"])
    op.create_table(
        "outcomes",
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
    _append_only_triggers()


def _append_only_triggers() -> None:
    """UPDATE and DELETE on the audit tables fail in the database itself, whoever connects."""
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        for table in AUDIT_TABLES:
            for action in ("update", "delete"):
                op.execute(f"CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")
    elif dialect == "postgresql":
        op.execute("CREATE OR REPLACE FUNCTION riskprof_append_only() RETURNS trigger AS $$ BEGIN "
                   f"RAISE EXCEPTION '{APPEND_ONLY}'; END; $$ LANGUAGE plpgsql")
        for table in AUDIT_TABLES:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION riskprof_append_only()")
            # TRUNCATE skips row triggers: refuse it with a statement trigger
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION riskprof_append_only()")


def downgrade() -> None:
    for table in ("outcomes", "audit_items", "audit_events", "api_keys"):
        op.drop_table(table)
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS riskprof_append_only()")
