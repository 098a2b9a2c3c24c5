"""Risk profiles and watch lists (every version kept), their change log, alerts, and the rule hits
of every audited declaration.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

APPEND_ONLY_TABLES = ("audit_rule_hits", "profile_changes")
APPEND_ONLY = "the audit log is append-only"


def upgrade() -> None:
    op.create_table(
        "audit_rule_hits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_uid", sa.String(32), sa.ForeignKey("audit_events.uid"), nullable=False),
        sa.Column("item", sa.Integer, nullable=False),
        sa.Column("declaration_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    for col in ("event_uid", "declaration_id", "rule_id"):
        op.create_index(f"ix_audit_rule_hits_{col}", "audit_rule_hits", [col])
    op.create_table(
        "profile_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("profile_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("profile_id", "version", name="uq_profile_versions_profile_id_version"),
    )
    op.create_index("ix_profile_versions_profile_id", "profile_versions", ["profile_id"])
    op.create_table(
        "watch_list_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("field", sa.String(100), nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_watch_list_versions_name_version"),
    )
    op.create_index("ix_watch_list_versions_name", "watch_list_versions", ["name"])
    op.create_table(
        "profile_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
    )
    op.create_index("ix_profile_changes_rule_id", "profile_changes", ["rule_id"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("declaration_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("rule_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("criterion", sa.Text, nullable=False),
        sa.Column("risk_score", sa.Float, nullable=True),
        sa.Column("lane", sa.String(10), nullable=True),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_by", sa.String(200), nullable=True),
        sa.UniqueConstraint("declaration_id", "kind", "rule_id", "version", name="uq_alerts_declaration_rule"),
    )
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])
    _append_only_triggers()


def _append_only_triggers() -> None:
    """As for the rest of the audit log (0001): UPDATE and DELETE fail in the database itself."""
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":  # as in 0001; again here, since a legacy store stamped at 0001 lacks it
        op.execute("CREATE OR REPLACE FUNCTION riskprof_append_only() RETURNS trigger AS $$ BEGIN "
                   f"RAISE EXCEPTION '{APPEND_ONLY}'; END; $$ LANGUAGE plpgsql")
    for table in APPEND_ONLY_TABLES:
        if dialect == "sqlite":
            for action in ("update", "delete"):
                op.execute(f"CREATE TRIGGER {table}_no_{action} BEFORE {action.upper()} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END")
        elif dialect == "postgresql":
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION riskprof_append_only()")
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION riskprof_append_only()")


def downgrade() -> None:
    for table in ("alerts", "profile_changes", "watch_list_versions", "profile_versions", "audit_rule_hits"):
        op.drop_table(table)
