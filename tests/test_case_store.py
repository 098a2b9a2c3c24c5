"""The case workflow's store (``serving.case_store``) on SQLite and PostgreSQL: what a note or a status
may be, and that a refused change stores nothing."""

from __future__ import annotations

from typing import Any

import pytest

from serving.case_store import MAX_NOTE_CHARS, CaseProblem, CaseStore


@pytest.mark.parametrize("text, problem", [("   ", "Enter the note"),
                                           ("x" * (MAX_NOTE_CHARS + 1), r"at most 4,000 characters \(4,001 given\)"),
                                           ("seal\x00broken", "cannot contain a NUL")])
def test_a_note_that_cannot_be_kept_is_refused_and_nothing_is_stored(serving_store: Any, text: str,
                                                                     problem: str) -> None:
    cases = CaseStore(serving_store.engine)
    with pytest.raises(CaseProblem, match=problem) as exc:
        cases.add_note("D1", "officer1", text)
    assert exc.value.field == "note"
    assert cases.case("D1")["notes"] == []
    cases.add_note("D1", "officer1", "  seal broken,\ttwo crates\nopened  ")  # tabs and line breaks are text
    assert [n["text"] for n in cases.case("D1")["notes"]] == ["seal broken,\ttwo crates\nopened"]


def test_a_status_outside_the_workflow_is_refused(serving_store: Any) -> None:
    cases = CaseStore(serving_store.engine)
    with pytest.raises(CaseProblem, match="choose a status among new, under review"):
        cases.update("D1", "officer1", status="lost")
    assert cases.case("D1")["status"] == "new"
    assert cases.update("D1", "officer1", status="examined", assignee="officer1")["status"] == "examined"
