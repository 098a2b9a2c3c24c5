"""Draft profiles suggested from a seizure history built by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from features.contracts import DECLARATION, SEIZURE, normalize_table
from profiles import match_profiles
from profiles.suggest import suggest_profiles
from tests.factories import make_seizures


def seizures(cases: list[tuple[str, str, str, str, str, str | None]]) -> pd.DataFrame:
    rows = []
    for case_id, day, dep, dest, conveyance, hs in cases:
        for item in range(2 if case_id == "C2" else 1):  # a case with two seized items counts once
            rows.append({"case_id": case_id, "seizure_id": f"{case_id}-{item}", "event_date": day,
                         "reporting_country": dest, "direction": "import", "departure_country": dep,
                         "destination_country": dest, "conveyance": conveyance,
                         "detection_method": "x-ray / scanner", "detection_location": "land border",
                         "commodity_category": "small arms", "weapon_type": "revolver", "quantity": 1,
                         "declared_hs_code": hs})
    out, report = normalize_table(pd.DataFrame(rows), SEIZURE)
    assert report.ok, report.summary()
    return out


HISTORY = [
    ("C0", "2022-06-01", "TR", "DE", "vehicle", "820600"),  # before both windows
    ("C1", "2023-03-01", "TR", "DE", "vehicle", "820600"),  # earlier window
    ("C2", "2023-08-01", "TR", "DE", "vehicle", "820600"),
    ("C3", "2023-09-01", "TR", "DE", "vehicle", "82060000"),
    ("C4", "2023-10-01", "TR", "DE", "vehicle", "820600"),
    ("C5", "2023-11-01", "TR", "DE", "vehicle", "820600"),
    *[(f"W{i}", "2023-12-31", "TR", "DE", "vehicle", "930200") for i in range(5)],  # declared as weapons
    *[(f"F{i}", f"2023-0{i + 1}-15", "CN", "YE", "vessel", "940360") for i in range(3)],
    *[(f"G{i}", f"2023-1{i}-15", "CN", "YE", "vessel", "940360") for i in range(3)],
]


def test_rising_combinations_become_drafts_with_their_evidence():
    out = suggest_profiles(seizures(HISTORY), since=dt.date(2023, 7, 1))
    # route + conveyance: C1 before; C2-C5 and W0-W4 after. The triple TR→DE by vehicle, HS 8206: C1
    # before, C2-C5 after (route + heading and conveyance + heading hold the same cases: left out).
    # CN→YE by vessel, HS 9403: 3 before and 3 after, no rise. Weapons headings are never cover goods.
    assert [(s.combination, s.before, s.after, s.change) for s in out] == [
        ({"route": "TR>DE", "conveyance": "vehicle"}, 1, 9, 8),
        ({"route": "TR>DE", "conveyance": "vehicle", "heading": "8206"}, 1, 4, 3),
    ]
    triple = out[1]
    assert triple.example_cases == ("C5", "C4", "C3", "C2")
    assert out[0].example_cases == ("W0", "W1", "W2", "W3", "W4")
    assert triple.recent_window == (dt.date(2023, 7, 1), dt.date(2023, 12, 31))
    assert triple.earlier_window == (dt.date(2022, 12, 29), dt.date(2023, 6, 30))
    p = triple.profile
    assert (p.status, p.id, p.valid_from, p.valid_to) == ("draft", "suggested-8206-TR-DE-vehicle",
                                                         dt.date(2024, 1, 1), dt.date(2024, 6, 29))
    assert [(c.field, c.op, c.values) for c in p.conditions] == [
        ("hs_code", "prefix", ("8206",)), ("departure_country", "in", ("TR",)),
        ("destination_country", "in", ("DE",)), ("conveyance", "in", ("vehicle",))]
    assert "rose from 1 (2022-12-29 to 2023-06-30) to 4 (2023-07-01 to 2023-12-31)" in p.criterion
    assert triple.evidence()["example_cases"] == ["C5", "C4", "C3", "C2"]


def test_a_draft_fires_only_once_an_analyst_activates_it():
    (_, triple) = suggest_profiles(seizures(HISTORY), since=dt.date(2023, 7, 1))
    decl, report = normalize_table(pd.DataFrame({
        "declaration_id": ["A", "B"], "declaration_date": ["2024-02-01", "2024-02-01"],
        "departure_country": ["TR", "TR"], "destination_country": ["DE", "DE"],
        "conveyance": ["vehicle", "vessel"], "hs_code": ["820600", "820600"]}), DECLARATION)
    assert report.ok
    assert match_profiles(decl, [triple.profile]).rules == ()
    active = triple.profile.model_copy(update={"status": "active"})
    assert match_profiles(decl, [active]).rows[0].tolist() == [0]


def test_thresholds_and_an_empty_history():
    assert suggest_profiles(seizures(HISTORY), since=dt.date(2023, 7, 1), min_recent=10) == []
    assert suggest_profiles(seizures(HISTORY).iloc[:0]) == []
    many = suggest_profiles(make_seizures(np.random.default_rng(0), 400, days=720), min_ratio=1.5, limit=5)
    assert len(many) == 5 and all(s.after >= 3 and s.profile.status == "draft" for s in many)
    assert [s.change for s in many] == sorted((s.change for s in many), reverse=True)
