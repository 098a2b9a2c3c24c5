"""The workflow of a declaration's case in the workbench: assignee and status, and notes (append-only).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NOTES_APPEND_ONLY = "case notes are append-only"


def upgrade() -> None:
    op.create_table(
        "case_work",
        sa.Column("declaration_id", sa.String(200), primary_key=True),
        sa.Column("assignee", sa.String(200), nullable=True),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "case_notes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("declaration_id", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_case_notes_declaration_id", "case_notes", ["declaration_id"])
    dialect = op.get_context().dialect.name
    if dialect == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER case_notes_no_{event.lower()} BEFORE {event} ON case_notes "
                       f"BEGIN SELECT RAISE(ABORT, '{NOTES_APPEND_ONLY}'); END")
    elif dialect == "postgresql":
        op.execute("CREATE OR REPLACE FUNCTION riskprof_case_notes_append_only() RETURNS trigger AS $$ BEGIN "
                   f"RAISE EXCEPTION '{NOTES_APPEND_ONLY}'; END; $$ LANGUAGE plpgsql")
        op.execute("CREATE TRIGGER case_notes_append_only BEFORE UPDATE OR DELETE ON case_notes "
                   "FOR EACH ROW EXECUTE FUNCTION riskprof_case_notes_append_only()")


def downgrade() -> None:
    op.drop_table("case_notes")
    op.drop_table("case_work")
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS riskprof_case_notes_append_only()")
