"""Profiles, watch lists, alerts and effectiveness in a real serving store (SQLite in tmp_path; PostgreSQL, slow)."""

from __future__ import annotations

import math
from typing import Any

import pytest
import sqlalchemy as sa

from profiles import ProfileError
from serving.profile_store import Actor, ProfileStore, profile_changes
from serving.roles import Principal, Role
from serving.store import Store, audit_rule_hits

ANALYST = Actor("ana", "analyst")


def profile(pid: str, **kw: Any) -> dict[str, Any]:
    doc = {"id": pid, "name": pid, "criterion": f"criterion of {pid}",
           "conditions": [{"field": "hs_code", "op": "prefix", "values": ["8206"]}],
           "action": {"select": True, "alert": True}, "valid_from": "2023-01-01", "status": "active",
           "owner": "ana"}
    doc.update(kw)
    return doc


@pytest.fixture
def store(serving_store: Store) -> Store:
    return serving_store


@pytest.fixture
def profiles(store: Store) -> ProfileStore:
    return ProfileStore(store.engine, extra_columns={})


def test_an_invalid_batch_stores_nothing(profiles: ProfileStore) -> None:
    with pytest.raises(ProfileError) as exc:
        profiles.save([profile("P-A"), profile("P-B", valid_to="2022-01-01")], [], ANALYST)
    assert [(p.profile, p.kind) for p in exc.value.problems] == [("P-B", "profile")]
    assert profiles.profile_history() == [] and profiles.changes() == [] and profiles.revision() == 0


def test_a_change_adds_a_version_and_keeps_the_old_one_and_an_unchanged_one_adds_nothing(
        profiles: ProfileStore) -> None:
    assert [p.version for p in profiles.save([profile("P-A")], [], ANALYST).profiles] == [1]
    assert profiles.save([profile("P-A")], [], ANALYST).profiles == []
    saved = profiles.update_profile("P-A", profile("P-A", criterion="new reason", version=7), Actor("bo", "admin"))
    assert [(p.version, p.criterion) for p in saved.profiles] == [(2, "new reason")]
    assert [(p.version, p.criterion) for p in profiles.profile_history("P-A")] == [
        (1, "criterion of P-A"), (2, "new reason")]
    assert profiles.profile("P-A", 1).criterion == "criterion of P-A"
    assert [(c["actor"], c["role"], c["action"], c["version"]) for c in profiles.changes("P-A")] == [
        ("ana", "analyst", "create", 1), ("bo", "admin", "change", 2)]


def test_the_revision_moves_with_every_change_only(profiles: ProfileStore) -> None:
    before = profiles.revision()
    profiles.save([profile("P-A")], [], ANALYST)
    after = profiles.revision()
    assert after > before
    profiles.save([profile("P-A")], [], ANALYST)
    assert profiles.revision() == after
    profiles.retire("P-A", ANALYST)
    assert profiles.revision() > after


def test_the_rule_set_pins_the_latest_active_version_of_each_profile(profiles: ProfileStore) -> None:
    profiles.save([profile("P-A"), profile("P-DRAFT", status="draft"), profile("P-OLD")], [], ANALYST)
    profiles.update_profile("P-A", profile("P-A", criterion="v2"), ANALYST)
    profiles.retire("P-OLD", ANALYST)
    wl = {"name": "imps", "field": "importer_id", "action": {"lane": "yellow"},
          "entries": [{"value": "IMP1", "reason": "tip", "added_by": "ana"}]}
    profiles.save([], [wl], ANALYST)
    rules, pinned, lists = profiles.ruleset()
    assert [(p.id, p.version) for p in pinned] == [("P-A", 2)]
    assert [(r.kind, r.id, r.version) for r in rules.rules] == [("profile", "P-A", 2), ("watch_list", "imps", 1)]
    assert [w.name for w in lists] == ["imps"]


def test_a_resumed_run_rebuilds_the_set_its_start_pinned_whatever_changed_since(profiles: ProfileStore) -> None:
    wl = {"name": "imps", "field": "importer_id", "entries": [{"value": "IMP1", "reason": "tip", "added_by": "a"}]}
    profiles.save([profile("P-A"), profile("P-B")], [wl], ANALYST)
    pins = profiles.pins()
    assert pins == {"profiles": [{"id": "P-A", "version": 1}, {"id": "P-B", "version": 1}],
                    "watch_lists": [{"name": "imps", "version": 1}]}
    profiles.update_profile("P-A", profile("P-A", criterion="v2"), ANALYST)
    profiles.retire("P-B", ANALYST)
    rules = profiles.ruleset_of(pins)
    assert [(r.id, r.version, r.criterion) for r in rules.rules] == [
        ("P-A", 1, "criterion of P-A"), ("P-B", 1, "criterion of P-B")]
    with pytest.raises(LookupError, match="P-C"):
        profiles.ruleset_of({"profiles": [{"id": "P-C", "version": 1}]})


def test_rules_on_a_column_the_mapping_lost_are_left_out_not_an_error(store: Store,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    with_seller = ProfileStore(store.engine, extra_columns={"seller_id": "string"})
    wl = {"name": "sellers", "field": "seller_id", "action": {"select": True},
          "entries": [{"value": "S1", "reason": "tip", "added_by": "a"}]}
    on_seller = profile("P-S", conditions=[{"field": "seller_id", "op": "in", "values": ["S9"]}])
    with_seller.save([profile("P-A"), on_seller], [wl], ANALYST)
    assert [r.id for r in with_seller.ruleset()[0].rules] == ["P-A", "P-S", "sellers"]
    rules, pinned, lists = ProfileStore(store.engine, extra_columns={}).ruleset()
    assert [r.id for r in rules.rules] == ["P-A"] and lists == []
    assert "profile P-S v1, watch list sellers v1" in caplog.text


def test_an_alert_is_raised_once_per_declaration_and_rule_version(profiles: ProfileStore) -> None:
    row = {"declaration_id": "D1", "kind": "profile", "rule_id": "P-A", "version": 1, "criterion": "c",
           "risk_score": 0.2, "lane": "red", "source": "score"}
    assert profiles.create_alerts([row, row]) == 1
    assert profiles.create_alerts([row]) == 0
    assert profiles.create_alerts([{**row, "version": 2}]) == 1
    found = profiles.list_alerts()
    assert sorted(a["version"] for a in found) == [1, 2]
    acked = profiles.ack_alert(found[0]["id"], Actor("olga", "officer"))
    assert acked["status"] == "acked" and acked["acked_by"] == "olga"
    assert len(profiles.list_alerts("open")) == 1


def record_small_history(store: Store) -> None:
    """Six declarations ranked once and their outcomes, with figures checked by hand in the tests:
    P-A matched D1-D3 (selected by rule, all inspected, D1 and D3 hits); P-B matched D4 (not
    inspected); the model selected D5 (hit) and D6 (no hit)."""
    ps = ProfileStore(store.engine, extra_columns={})
    ps.save([profile("P-A"), profile("P-B")], [], ANALYST)

    def item(did: str, selection: str, hits: tuple[str, ...] = ()) -> dict[str, Any]:
        return {"declaration_id": did, "risk_score": 0.1, "lane": "green", "selection": selection,
                "selection_probability": 1.0 if selection != "none" else 0.0, "reasons": None,
                "rule_hits": [{"kind": "profile", "id": h, "version": 1, "criterion": "c"} for h in hits]}

    items = [item("D1", "rule", ("P-A",)), item("D2", "rule", ("P-A",)), item("D3", "rule", ("P-A",)),
             item("D4", "none", ("P-B",)), item("D5", "model"), item("D6", "model")]
    store.append_audit(Principal("o", Role.officer), "rank", "m", "1", items)

    def outcome(did: str, hit: bool, source: str) -> dict[str, Any]:
        return {"declaration_id": did, "inspected_date": "2023-06-02", "inspected": True, "selection_source": source,
                "selection_probability": 1.0, "hit": hit, "case_id": None, "revenue": None}

    store.record_outcomes([outcome("D1", True, "rule"), outcome("D2", False, "rule"), outcome("D3", True, "rule"),
                           outcome("D5", True, "model"), outcome("D6", False, "model")], recorded_by="o")


def test_stats_from_recorded_selections_and_outcomes_by_hand(store: Store, profiles: ProfileStore) -> None:
    record_small_history(store)
    table = profiles.stats().set_index("rule_id")
    a, b = table.loc["P-A"], table.loc["P-B"]
    assert (a["matches"], a["inspections"], a["hits"], a["versions"]) == (3, 3, 2, [1])
    assert a["hit_rate"] == pytest.approx(2 / 3)
    assert (b["matches"], b["inspections"], b["hits"]) == (1, 0, 0) and math.isnan(b["hit_rate"])
    # the model's own figure over the same declarations: D5 hit, D6 none
    assert (a["model_inspections"], a["model_hits"], a["model_hit_rate"]) == (2, 1, 0.5)
    assert list(profiles.stats(rule_id="P-B")["rule_id"]) == ["P-B"]


def test_the_change_log_and_recorded_rule_hits_are_append_only(store: Store, profiles: ProfileStore) -> None:
    record_small_history(store)
    for table in (profile_changes, audit_rule_hits):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), store.engine.begin() as conn:
            conn.execute(table.delete())


def test_latest_versions_and_pinned_versions_are_read_alone_in_order(profiles: ProfileStore) -> None:
    """``profiles()``/``watchlists()`` read each one's newest version (not the history) in the order
    ``latest_versions`` of the history gives; ``versions(pins)`` reads exactly the pinned versions, in
    the pins' order, older ones included."""
    from profiles import latest_versions
    from serving.profile_store import NotFound

    def wl(name: str, *values: str) -> dict[str, Any]:
        return {"name": name, "field": "importer_id", "entries": [
            {"value": v, "reason": f"tip-off on {v}", "added_by": "ana"} for v in values]}

    profiles.save([profile("P-B"), profile("P-A")], [wl("L2", "I1"), wl("L1", "I2")], ANALYST)
    profiles.update_profile("P-B", profile("P-B", criterion="second"), ANALYST)
    profiles.update_profile("P-B", profile("P-B", criterion="third"), ANALYST)
    profiles.update_watchlist("L2", wl("L2", "I1", "I3"), ANALYST)
    assert profiles.profiles() == latest_versions(profiles.profile_history())
    assert [(p.id, p.version, p.criterion) for p in profiles.profiles()] == [("P-B", 3, "third"), ("P-A", 1, "criterion of P-A")]
    assert profiles.watchlists() == latest_versions(profiles.watchlist_history())
    assert [(w.name, w.version, len(w.entries)) for w in profiles.watchlists()] == [("L2", 2, 2), ("L1", 1, 1)]
    assert (profiles.watchlist("L2").version, len(profiles.watchlist("L2").entries)) == (2, 2)
    assert profiles.watchlist("L1") == profiles.watchlists()[1]
    with pytest.raises(NotFound):
        profiles.watchlist("L3")
    # a change is numbered after the latest version; the same content again adds nothing
    assert [w.version for w in profiles.update_watchlist("L2", wl("L2", "I1"), ANALYST).watchlists] == [3]
    assert profiles.update_watchlist("L2", wl("L2", "I1"), ANALYST).watchlists == []
    assert [w.version for w in profiles.watchlist_history("L2")] == [1, 2, 3]

    pins = {"profiles": [{"id": "P-A", "version": 1}, {"id": "P-B", "version": 2}],
            "watch_lists": [{"name": "L1", "version": 1}, {"name": "L2", "version": 1}]}
    got_p, got_w = profiles.versions(pins)
    assert [(p.id, p.version, p.criterion) for p in got_p] == [("P-A", 1, "criterion of P-A"), ("P-B", 2, "second")]
    assert [(w.name, w.version, len(w.entries)) for w in got_w] == [("L1", 1, 1), ("L2", 1, 1)]
    with pytest.raises(NotFound, match=r"\('P-B', 4\)"):
        profiles.versions({"profiles": [{"id": "P-B", "version": 4}], "watch_lists": []})


def test_a_batch_alert_table_is_stored_as_its_records_would_be(store: Store) -> None:
    """A batch hands its alerts over as an Arrow table (``OutputCounts.alert_table``): stored with the
    same values as the same alerts given as records, duplicates skipped alike."""
    import pyarrow as pa

    from batch._output import ALERT_SCHEMA

    rows = [{"declaration_id": f"D{i}", "kind": "profile" if i % 2 else "watch_list", "rule_id": f"R{i % 3}",
             "version": 1 + i % 2, "criterion": f"reason é {i}", "risk_score": None if i == 4 else i / 10,
             "lane": "red", "source": "batch"} for i in range(6)]
    by_records = ProfileStore(store.engine, extra_columns={})
    assert by_records.create_alerts(rows + rows[:2]) == 6

    def stored() -> list[tuple[Any, ...]]:
        return sorted((a["declaration_id"], a["kind"], a["rule_id"], a["version"], a["criterion"], a["risk_score"],
                       a["lane"], a["source"], a["status"]) for a in by_records.list_alerts(limit=100))

    first = stored()
    with store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM alerts"))
    table = pa.Table.from_pylist(rows + rows[:2], schema=ALERT_SCHEMA)
    assert by_records.create_alerts(table) == 6
    assert stored() == first
    assert by_records.create_alerts(table.slice(0, 3)) == 0


def test_a_definition_stored_before_the_text_bounds_stays_readable(profiles: ProfileStore, store: Store) -> None:
    """The bounds on names and criteria apply to what comes in: a profile stored before them (a 600-character
    name here, written as an older version would have) is still read, listed and applied."""
    from serving.profile_store import profile_versions

    profiles.save([profile("P-OLD")], [], ANALYST)
    with store.engine.begin() as conn:
        conn.execute(profile_versions.update().where(profile_versions.c.profile_id == "P-OLD")
                     .values(definition={**profile("P-OLD"), "name": "n" * 600, "version": 1}))
    (read,) = profiles.profiles()
    assert read.name == "n" * 600
    with pytest.raises(ProfileError, match="at most 500 characters"):  # a new version must keep the bounds
        profiles.save([profile("P-OLD", name="n" * 600, criterion="changed")], [], ANALYST)
