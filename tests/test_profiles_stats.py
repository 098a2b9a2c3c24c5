"""Effectiveness of profiles and watch lists, computed by hand on a small outcome set."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from profiles import RuleHit
from profiles.stats import STATS_COLUMNS, profile_stats, rule_hits_table, wilson_interval

SELECTIONS = pd.DataFrame({
    "declaration_id": [f"D{i}" for i in range(1, 10)],
    "declaration_date": pd.to_datetime(["2023-03-01"] * 8 + ["2023-05-01"]),
    "selection_source": ["rule", "rule", "rule", "rule", "random", "model", "model", "model", "rule"],
})
RULE_HITS = pd.DataFrame([
    ("D1", "profile", "P1", 1), ("D2", "profile", "P1", 1), ("D3", "profile", "P1", 2), ("D4", "profile", "P1", 2),
    ("D9", "profile", "P1", 2),  # outside the period below
    ("D2", "watch_list", "imp", 1), ("D5", "watch_list", "imp", 1),
], columns=["declaration_id", "kind", "rule_id", "version"])
OUTCOMES = pd.DataFrame({
    "declaration_id": ["D1", "D2", "D3", "D4", "D5", "D6", "D7", "D8", "D9"],
    "inspected": [True, True, True, False, True, True, True, True, True],
    "hit": [True, False, True, False, False, True, False, True, True],
})


def test_wilson_interval_matches_hand_computed_values():
    # 2 of 3: centre (2/3 + z²/6) / (1 + z²/3), half z·sqrt(2/27 + z²/36) / (1 + z²/3)
    low, high = wilson_interval(np.array([2, 0, 0]), np.array([3, 2, 0]))
    assert low[:2] == pytest.approx([0.2077, 0.0], abs=1e-4)
    assert high[:2] == pytest.approx([0.9385, 0.6576], abs=1e-4)
    assert np.isnan(low[2]) and np.isnan(high[2])


def test_matches_inspections_hits_and_the_model_rate_by_hand():
    out = profile_stats(RULE_HITS, SELECTIONS, OUTCOMES, since=dt.date(2023, 1, 1), until=dt.date(2023, 3, 31),
                        retire_after=2)
    assert list(out.columns) == list(STATS_COLUMNS)
    p1 = out.set_index("rule_id").loc["P1"]
    imp = out.set_index("rule_id").loc["imp"]
    # P1: D1-D4 (D9 is in May); inspected D1, D2, D3; hits D1, D3
    assert (p1["kind"], p1["versions"], p1["matches"], p1["inspections"], p1["hits"]) == ("profile", [1, 2], 4, 3, 2)
    assert p1["hit_rate"] == pytest.approx(2 / 3)
    assert (p1["hit_rate_low"], p1["hit_rate_high"]) == pytest.approx((0.2077, 0.9385), abs=1e-4)
    # watch list: D2, D5 both inspected, no hit → flagged with retire_after=2
    assert (imp["matches"], imp["inspections"], imp["hits"], imp["hit_rate"]) == (2, 2, 0, 0.0)
    assert bool(imp["candidate_for_retirement"]) and not bool(p1["candidate_for_retirement"])
    # the model over the same period: D6, D7, D8 inspected, D6 and D8 hits
    assert (p1["model_inspections"], p1["model_hits"]) == (3, 2)
    assert p1["model_hit_rate"] == pytest.approx(2 / 3)
    assert p1["model_hit_rate_low"] == pytest.approx(0.2077, abs=1e-4)


def test_whole_history_counts_the_later_match_and_default_needs_thirty_inspections():
    out = profile_stats(RULE_HITS, SELECTIONS, OUTCOMES).set_index("rule_id")
    assert (out.loc["P1", "matches"], out.loc["P1", "inspections"], out.loc["P1", "hits"]) == (5, 4, 3)
    assert not out["candidate_for_retirement"].any()


def test_thirty_inspections_without_a_hit_flag_a_profile():
    ids = [f"X{i}" for i in range(31)]
    sel = pd.DataFrame({"declaration_id": ids, "declaration_date": pd.Timestamp("2023-01-02"),
                        "selection_source": "rule"})
    hits = pd.DataFrame({"declaration_id": ids, "kind": "profile", "rule_id": "dud", "version": 1})
    outc = pd.DataFrame({"declaration_id": ids[:30], "inspected": True, "hit": False})
    out = profile_stats(hits, sel, outc)
    assert (out.loc[0, "matches"], out.loc[0, "inspections"]) == (31, 30)
    assert bool(out.loc[0, "candidate_for_retirement"])
    assert np.isnan(out.loc[0, "model_hit_rate"])


def test_rule_hits_as_recorded_become_the_long_table():
    hits = np.empty(3, dtype=object)
    hits[:] = [(RuleHit("profile", "P1", 2, "c"),), (), (RuleHit("profile", "P1", 2, "c"), RuleHit("watch_list", "w", 1, "r"))]
    table = rule_hits_table(np.array(["A", "B", "C"]), hits)
    assert table.values.tolist() == [["A", "profile", "P1", 2], ["C", "profile", "P1", 2], ["C", "watch_list", "w", 1]]
