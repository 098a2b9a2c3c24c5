"""YAML round trip of profiles and watch lists, and versioning as a pure function of the history."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from profiles import (
    ProfileError,
    add_versions,
    dump_profiles,
    latest_versions,
    load_profiles,
    pinned_profiles,
    retire,
    validate_profiles,
)

PROFILES = [
    {"id": "tools-tr-de", "name": "Hand tools TR→DE", "criterion": "hand tools (HS 8206) from TR to DE by road: "
     "cover goods in recent weapon seizures — «ünïcode»", "owner": "analyst1", "status": "active", "version": 3,
     "valid_from": "2023-01-01", "valid_to": "2023-12-31", "action": {"lane": "red", "select": True, "alert": True},
     "conditions": [
         {"field": "hs_code", "op": "prefix", "values": ["8206", "0101"]},
         {"field": "departure_country", "op": "in", "values": ["TR"]},
         {"field": "conveyance", "op": "not_in", "values": ["vessel", "express courier"]},
         {"field": "customs_value", "op": "between", "values": [None, 2500.5]},
         {"field": "declaration_date", "op": "between", "values": ["2023-02-01", "2023-03-01"]},
         {"field": "goods_description", "op": "contains_any", "values": ["spanner", "true", "null", "1e3"]},
         {"field": "transit_countries", "op": "is_null"},
         {"field": "importer_id", "op": "in_watch_list", "watch_list": "importers"},
     ]},
    {"id": "draft-1", "name": "d", "criterion": "c", "owner": "o", "valid_from": "2024-01-01",
     "action": {"alert": True}, "conditions": [{"field": "importer_id", "op": "in", "values": ["007", "yes"]}]},
]
LISTS = [
    {"name": "importers", "field": "importer_id", "description": "under investigation", "version": 2,
     "entries": [{"value": "I1", "reason": "tip-off", "added_by": "a1", "expires": "2024-06-30"},
                 {"value": "0042", "reason": "case C-17", "added_by": "a2"}]},
    {"name": "cover-headings", "field": "hs_code", "action": {"lane": "yellow"},
     "entries": [{"value": "9403", "reason": "furniture cover", "added_by": "a1"}]},
]


def test_export_then_import_gives_the_same_profiles_and_watch_lists(tmp_path):
    profiles, lists = validate_profiles(PROFILES, LISTS)
    text = dump_profiles(profiles, lists)
    path = tmp_path / "profiles.yaml"
    path.write_text(text, encoding="utf-8")
    again, again_lists = load_profiles(path)
    assert again == profiles and again_lists == lists
    assert dump_profiles(again, again_lists) == text
    assert "'0101'" in text  # a prefix with a leading zero stays text


def test_a_broken_file_is_refused_with_every_problem(tmp_path: Path):
    with pytest.raises(ProfileError, match="expected the keys"):
        load_profiles("profile: []")
    path = tmp_path / "lists.csv"  # a file given by mistake: the problem names it
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ProfileError) as named:
        load_profiles(path)
    assert str(named.value.problems[0]).startswith(f"file '{path}': expected the keys")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profiles("profiles: [")
    text = dump_profiles(*validate_profiles(PROFILES, LISTS)).replace("'8206'", "'82x6'").replace("TR", "T1")
    with pytest.raises(ProfileError) as exc:
        load_profiles(text)
    assert [(p.profile, p.condition) for p in exc.value.problems] == [("tools-tr-de", 0), ("tools-tr-de", 1)]


def test_a_changed_profile_gets_the_next_version_and_earlier_versions_stay():
    (v1,), _ = validate_profiles([{**PROFILES[1], "version": 1}])
    history, added = add_versions([], [v1])
    assert added == [v1] and history == [v1]
    history, added = add_versions(history, [v1])  # unchanged: no new version
    assert added == [] and history == [v1]
    changed = v1.model_copy(update={"criterion": "sharper criterion", "status": "active"})
    history, added = add_versions(history, [changed])
    assert [p.version for p in history] == [1, 2] and history[0] == v1
    assert added[0].criterion == "sharper criterion" and added[0].version == 2
    # an edit made from an old copy still becomes the newest version
    history, added = add_versions(history, [v1.model_copy(update={"owner": "analyst2"})])
    assert [p.version for p in history] == [1, 2, 3] and added[0].owner == "analyst2"
    assert latest_versions(history) == [added[0]]


def test_retiring_is_a_new_version_and_pinning_takes_latest_active_versions():
    profiles, _ = validate_profiles(PROFILES, LISTS)
    history, _ = add_versions([], profiles)
    assert [(p.id, p.version) for p in pinned_profiles(history)] == [("tools-tr-de", 3)]
    assert pinned_profiles(history, on=dt.date(2024, 1, 1)) == []  # past its valid_to
    history, retired = retire(history, "tools-tr-de")
    assert (retired.version, retired.status) == (4, "retired")
    assert history[0].status == "active" and pinned_profiles(history) == []
    with pytest.raises(KeyError):
        retire(history, "nope")


def test_watch_lists_are_versioned_the_same_way():
    _, lists = validate_profiles([], LISTS)
    history, _ = add_versions([], lists)
    grown = lists[0].model_copy(update={"entries": (*lists[0].entries, lists[0].entries[0].model_copy(
        update={"value": "I9"}))})
    history, added = add_versions(history, [grown, lists[1]])
    assert [(w.name, w.version) for w in added] == [("importers", 3)]


def test_a_key_given_twice_is_refused_in_profiles_and_in_mappings(tmp_path: Path):
    """PyYAML keeps the last value: a second 'name:' silently renamed the profile (a new version), and a
    second column in a mapping silently read another source column."""
    from features.mapping import MappingError, load_mapping

    text = dump_profiles(*validate_profiles(PROFILES, LISTS))
    twice = text.replace("  name: ", "  name: other\n  name: ", 1)
    with pytest.raises(ProfileError) as exc:
        load_profiles(twice)
    assert "found the key 'name' a second time (first on line" in str(exc.value)
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("contract: declaration\ncolumns:\n  customs_value: Item Price\n  customs_value: Net Mass\n")
    with pytest.raises(MappingError, match="found the key 'customs_value' a second time \\(first on line 3\\)"):
        load_mapping(mapping)
    assert load_profiles(text)  # the same document without the repeat loads
