"""The workflow of a declaration's case: who it is assigned to, its status, and notes (append-only).

No FastAPI here: the workbench's pages call it, as the API's routes call the services. The tables
belong to :data:`serving.store.metadata`, so migrations and the schema check see them. A database that
cannot be reached or does not answer in time is a 503 (:class:`serving.store.StoreUnavailable`), as in
the API, never a 500.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from serving.store import _reachable, metadata

STATUSES = ("new", "under review", "referred for examination", "examined", "closed")
MAX_NOTE_CHARS = 4000

case_work = sa.Table(
    "case_work", metadata,
    sa.Column("declaration_id", sa.String(200), primary_key=True),
    sa.Column("assignee", sa.String(200), nullable=True),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False),
)

case_notes = sa.Table(
    "case_notes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("declaration_id", sa.String(200), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)


class CaseProblem(ValueError):
    """A workflow change that is not allowed (unknown status, empty or too long note)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CaseStore:
    def __init__(self, engine: Engine):
        self.engine = engine

    @_reachable
    def case(self, declaration_id: str) -> dict[str, Any]:
        """Assignee, status (``new`` until changed) and notes, oldest first."""
        with self.engine.connect() as conn:
            work = conn.execute(sa.select(case_work).where(case_work.c.declaration_id == declaration_id)
                                ).mappings().first()
            notes = conn.execute(sa.select(case_notes).where(case_notes.c.declaration_id == declaration_id)
                                 .order_by(case_notes.c.id)).mappings().all()
        state = dict(work) if work is not None else {"declaration_id": declaration_id, "assignee": None,
                                                      "status": "new", "updated_at": None, "updated_by": None}
        return {**state, "notes": [dict(n) for n in notes]}

    @_reachable
    def update(self, declaration_id: str, who: str, *, assignee: str | None = None,
               status: str | None = None) -> dict[str, Any]:
        """Set the assignee and/or the status; the rest stays as it was."""
        if status is not None and status not in STATUSES:
            raise CaseProblem("status", f"choose a status among {', '.join(STATUSES)}")
        with self.engine.begin() as conn:
            now = _now()
            values: dict[str, Any] = {"updated_at": now, "updated_by": who}
            if assignee is not None:
                values["assignee"] = assignee
            if status is not None:
                values["status"] = status
            done = conn.execute(case_work.update().where(case_work.c.declaration_id == declaration_id)
                                .values(**values)).rowcount
            if not done:
                conn.execute(case_work.insert().values(declaration_id=declaration_id,
                                                       **{"status": "new", "assignee": None, **values}))
        return self.case(declaration_id)

    @_reachable
    def add_note(self, declaration_id: str, who: str, text: str) -> None:
        text = text.strip()
        if not text:
            raise CaseProblem("note", "Enter the note")
        if len(text) > MAX_NOTE_CHARS:
            raise CaseProblem("note", f"A note has at most {MAX_NOTE_CHARS:,} characters ({len(text):,} given)")
        if "\x00" in text:  # never real text, and PostgreSQL's text columns refuse it
            raise CaseProblem("note", "A note cannot contain a NUL (U+0000) character")
        with self.engine.begin() as conn:
            conn.execute(case_notes.insert().values(declaration_id=declaration_id, created_at=_now(), author=who,
                                                    text=text))
