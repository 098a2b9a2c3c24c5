"""profiles.decide: the one decision of every scoring path. Matching chunk by chunk and selecting once
over the manifest (a batch) gives exactly what one call over the whole manifest (the API) gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from profiles import compile_rules, validate_profiles
from profiles.decide import alert_records, decide, decide_rules, select_decided
from scoring.ranking import rank_order, select_for_inspection
from tests.factories import make_declarations

PROFILES = [
    {"id": "P-TOOLS", "name": "tools", "criterion": "hand tools from TR", "owner": "a", "status": "active",
     "valid_from": "2022-01-01", "action": {"lane": "red", "select": True, "alert": True},
     "conditions": [{"field": "hs_code", "op": "prefix", "values": ["8206"]},
                    {"field": "departure_country", "op": "in", "values": ["TR"]}]},
    {"id": "P-MAIL", "name": "mail", "criterion": "light mail", "owner": "a", "status": "active",
     "valid_from": "2022-02-01", "valid_to": "2022-03-31", "action": {"lane": "yellow"},
     "conditions": [{"field": "conveyance", "op": "in", "values": ["mail"]}]},
    {"id": "P-DRAFT", "name": "draft", "criterion": "never fires", "owner": "a", "status": "draft",
     "valid_from": "2022-01-01", "action": {"select": True},
     "conditions": [{"field": "hs_code", "op": "prefix", "values": ["94"]}]},
]
LISTS = [{"name": "importers", "field": "importer_id", "description": "under investigation",
          "action": {"select": True}, "entries": [{"value": "I3", "reason": "tip-off", "added_by": "a"}]}]


@pytest.fixture(scope="module")
def manifest() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    frame = make_declarations(rng, 3_000, start="2022-01-01", days=120)
    risk = np.round(rng.random(len(frame)), 3)  # rounded: ties, broken by id
    lane = np.where(risk > 0.95, "red", np.where(risk > 0.8, "yellow", "green")).astype(object)
    return frame, risk, lane


@pytest.fixture(scope="module")
def rules():
    profiles, lists = validate_profiles(PROFILES, LISTS)
    return compile_rules(profiles, lists)


def test_chunked_matching_then_one_selection_equals_one_call(manifest, rules) -> None:
    frame, risk, lane = manifest
    ids = frame["declaration_id"].to_numpy(dtype=object)
    whole = decide(frame, risk, lane, rules, "5%", random_share=0.2, seed=7, ids=ids)
    parts = [decide_rules(frame.iloc[s:s + 700].reset_index(drop=True), risk[s:s + 700], lane[s:s + 700], rules)
             for s in range(0, len(frame), 700)]
    forced = np.concatenate([p.select for p in parts])
    rank, selection, probability = select_decided(forced, rank_order(risk, ids), "5%", 0.2, 7)
    assert whole.rank is not None and whole.selection is not None and whole.probability is not None
    assert np.array_equal(whole.rank, rank) and np.array_equal(whole.selection, selection)
    assert np.array_equal(whole.probability, probability)
    assert np.array_equal(whole.lane, np.concatenate([p.lane for p in parts]))
    assert np.array_equal(whole.alert, np.concatenate([p.alert for p in parts]))
    assert list(whole.rule_hits) == [h for p in parts for h in p.rule_hits]


def test_rules_select_first_raise_lanes_and_never_touch_the_score(manifest, rules) -> None:
    frame, risk, lane = manifest
    ids = frame["declaration_id"].to_numpy(dtype=object)
    d = decide(frame, risk, lane, rules, 50, ids=ids)
    def where(mask: pd.Series) -> np.ndarray:
        return mask.fillna(False).to_numpy(dtype=bool)

    tools = where(frame["hs_code"].str.startswith("8206")) & where(frame["departure_country"] == "TR")
    watched = where(frame["importer_id"] == "I3")
    in_window = frame["declaration_date"].between("2022-02-01", "2022-03-31").to_numpy()
    mail = where(frame["conveyance"] == "mail") & in_window
    assert np.array_equal(d.forced, tools | watched)
    assert set(d.selection_names[tools | watched]) == {"rule"}
    assert np.all(d.probability[tools | watched] == 1.0)
    assert np.all(d.lane[tools] == "red")
    assert np.all(d.lane[mail & ~tools] != "green")
    assert np.array_equal(d.alert, tools)
    assert np.array_equal(d.risk, risk) and not d.risk.flags.writeable
    assert not any(h.id == "P-DRAFT" for hs in d.rule_hits for h in hs)
    ids = frame["declaration_id"].to_numpy(dtype=object)
    alerted = alert_records(d, ids, "batch")
    assert [a["declaration_id"] for a in alerted] == list(ids[tools])
    assert {(a["rule_id"], a["version"], a["criterion"], a["lane"]) for a in alerted} == {
        ("P-TOOLS", 1, "hand tools from TR", "red")}
    # a chunk's decision names its rows by their place in the whole manifest
    part = decide_rules(frame.iloc[100:].reset_index(drop=True), risk[100:], lane[100:], rules)
    assert alert_records(part, ids, "batch", offset=100) == [a for a in alerted if a["declaration_id"] >= ids[100]]
    j = int(np.flatnonzero(watched & ~tools)[0])
    assert d.hits_json(j)[-1]["criterion"] == "under investigation: tip-off"


def test_without_rules_the_selection_is_the_model_policy(manifest) -> None:
    frame, risk, lane = manifest
    ids = frame["declaration_id"].to_numpy(dtype=object)
    d = decide(frame, risk, lane, compile_rules([], []), "10%", random_share=0.3, seed=2, ids=ids)
    ref = select_for_inspection(risk, ids, "10%", random_share=0.3, seed=2)
    assert np.array_equal(d.rank, ref.rank) and np.array_equal(d.probability, ref.probability)
    assert list(np.where(d.selection_names == "none", "", d.selection_names)) == list(ref.selected)
    assert np.array_equal(d.lane, lane) and d.matches.n_rows == len(frame)


def test_a_selection_needs_a_ranking(manifest, rules) -> None:
    frame, risk, lane = manifest
    with pytest.raises(ValueError, match="give ids"):
        decide(frame, risk, lane, rules, 10)
    assert decide(frame, risk, lane, rules).selection is None
