"""Profile and watch-list definitions, and their validation against the declaration contract."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from profiles import Action, Condition, Profile, ProfileError, WatchList, validate_profiles


def profile(conditions: list[dict], pid: str = "P1", **kw) -> dict:
    doc = {"id": pid, "name": "hand tools TR-DE", "criterion": "hand tools from TR to DE by road",
           "conditions": conditions, "action": {"lane": "red", "select": True}, "valid_from": "2023-01-01",
           "status": "active", "owner": "analyst1"}
    doc.update(kw)
    return doc


WL = {"name": "sellers", "field": "seller_id",
      "entries": [{"value": "S1", "reason": "tip-off", "added_by": "a1", "expires": "2023-12-31"}]}


def problems_of(exc: pytest.ExceptionInfo[ProfileError]) -> list[tuple]:
    return [(p.profile, p.condition, p.field) for p in exc.value.problems]


def test_an_action_needs_lane_select_or_alert_and_they_combine():
    with pytest.raises(ValidationError, match="at least one of lane, select, alert"):
        Action()
    both = Action(lane="yellow", select=True, alert=True)
    assert (both.lane, both.select, both.alert) == ("yellow", True, True)
    with pytest.raises(ValidationError):
        Action(lane="green")  # a rule never lowers a lane


def test_valid_profiles_come_back_in_the_contract_spelling():
    (p,), (w,) = validate_profiles([profile([
        {"field": "origin_country", "op": "in", "values": ["tr", " de"]},
        {"field": "conveyance", "op": "in", "values": ["Vehicle"]},
        {"field": "goods_description", "op": "contains_any", "values": ["Tools", "tools"]},
        {"field": "hs_code", "op": "prefix", "values": ["8206", "0101"]},
        {"field": "customs_value", "op": "between", "values": [100, None]},
        {"field": "declaration_date", "op": "between", "values": ["2023-01-01", "2023-06-30"]},
        {"field": "seller_id", "op": "in_watch_list", "watch_list": "sellers"},
    ])], [WL], extra_columns=["seller_id"])
    assert isinstance(p, Profile) and isinstance(w, WatchList)
    values = [c.values for c in p.conditions]
    assert values[0] == ("TR", "DE")
    assert values[1] == ("vehicle",)
    assert values[2] == ("tools",)
    assert values[3] == ("8206", "0101")
    assert values[4] == (100.0, None)
    assert values[5] == (dt.date(2023, 1, 1), dt.date(2023, 6, 30))
    assert p.conditions[6].watch_list == "sellers"


@pytest.mark.parametrize(("condition", "message"), [
    ({"field": "colour", "op": "in", "values": ["red"]}, "unknown field"),
    ({"field": "hs_code", "op": "between", "values": ["8206", "8207"]}, "operator 'between' does not fit a hs field"),
    ({"field": "importer_id", "op": "between", "values": [1, 2]}, "does not fit a str field"),
    ({"field": "customs_value", "op": "contains_any", "values": ["x"]}, "does not fit a float field"),
    ({"field": "origin_country", "op": "prefix", "values": ["82"]}, "does not fit a country field"),
    ({"field": "hs_code", "op": "prefix", "values": ["82a"]}, "not an HS prefix of 2 to 10 digits"),
    ({"field": "hs_code", "op": "prefix", "values": ["8"]}, "not an HS prefix"),
    ({"field": "hs_code", "op": "prefix", "values": ["12345678901"]}, "not an HS prefix"),
    ({"field": "hs_code", "op": "prefix", "values": ["８２"]}, "not an HS prefix"),  # full-width digits
    ({"field": "hs_code", "op": "prefix", "values": [8206]}, "quote it"),
    ({"field": "hs_code", "op": "in", "values": ["8206"]}, "HS code of 6 to 10 digits"),
    ({"field": "origin_country", "op": "in", "values": ["XX"]}, "not an ISO 3166"),
    ({"field": "conveyance", "op": "in", "values": ["vesel"]}, "is not one of"),
    ({"field": "customs_value", "op": "between", "values": [5, 1]}, "above high"),
    ({"field": "customs_value", "op": "between", "values": [5]}, "between takes [low, high]"),
    ({"field": "customs_value", "op": "between", "values": [None, None]}, "at least one end"),
    ({"field": "declaration_date", "op": "between", "values": ["2023-13-01", None]}, "not a date"),
    # a NaN bound compares false with everything: stored, 'between' matched every declaration
    ({"field": "customs_value", "op": "between", "values": [float("nan"), float("inf")]}, "not a finite number"),
    ({"field": "customs_value", "op": "between", "values": ["1e400", None]}, "not a finite number"),
    ({"field": "customs_value", "op": "between", "values": [None, "-inf"]}, "not a finite number"),
    ({"field": "customs_value", "op": "in", "values": ["nan"]}, "not a finite number"),
    ({"field": "customs_value", "op": "between", "values": [10**400, None]}, "is not a number"),
    ({"field": "goods_description", "op": "contains_any", "values": ["hand tools"]}, "single words"),
    ({"field": "importer_id", "op": "in", "values": []}, "at least one value"),
    ({"field": "importer_id", "op": "is_null", "values": ["x"]}, "takes no values"),
    ({"field": "importer_id", "op": "in_watch_list", "watch_list": "nope"}, "unknown watch list 'nope'"),
    ({"field": "importer_id", "op": "in_watch_list", "watch_list": "sellers"}, "over 'seller_id'"),
])
def test_a_condition_that_breaks_the_contract_names_profile_condition_and_problem(condition, message):
    ok = {"field": "importer_id", "op": "in", "values": ["I1"]}
    with pytest.raises(ProfileError) as exc:
        validate_profiles([profile([ok, condition], pid="tools-7")], [WL], extra_columns={"seller_id": "string"})
    (problem,) = exc.value.problems
    assert (problem.profile, problem.condition, problem.field) == ("tools-7", 1, condition["field"])
    assert message in problem.message
    assert "profile 'tools-7', condition 1" in str(exc.value)


def test_valid_to_before_valid_from_is_refused():
    with pytest.raises(ProfileError, match="valid_to 2022-12-31 is before valid_from 2023-01-01"):
        validate_profiles([profile([{"field": "importer_id", "op": "is_null"}], valid_to="2022-12-31")])


def test_a_batch_with_any_bad_profile_reports_every_problem():
    good = profile([{"field": "importer_id", "op": "is_null"}], pid="good")
    bad1 = profile([{"field": "nope", "op": "is_null"}], pid="bad1")
    bad2 = profile([{"field": "hs_code", "op": "prefix", "values": ["x"]}], pid="bad2", valid_to="2020-01-01")
    shape = {"id": "bad3", "name": "n", "criterion": "c", "conditions": [{"field": "hs_code", "op": "like"}],
             "action": {"select": True}, "valid_from": "2023-01-01", "owner": "o"}
    with pytest.raises(ProfileError) as exc:
        validate_profiles([good, bad1, bad2, shape])
    ids = [p[0] for p in problems_of(exc)]
    assert ids.count("bad2") == 2 and "bad1" in ids and "good" not in ids
    assert ("bad3", 0, "conditions.0.op") in problems_of(exc)


def test_watch_lists_are_checked_too():
    bad = [{"name": "hs", "field": "hs_code", "entries": [{"value": "9x", "reason": "r", "added_by": "a"}]},
           {"name": "values", "field": "customs_value"},
           {"name": "unknown", "field": "colour"}]
    with pytest.raises(ProfileError) as exc:
        validate_profiles([], bad)
    found = {(p.kind, p.profile, p.field) for p in exc.value.problems}
    assert found == {("watch list", "hs", "hs_code"), ("watch list", "values", "customs_value"),
                     ("watch list", "unknown", "colour")}


def test_a_profile_may_reference_a_stored_watch_list_and_numeric_extras_take_between():
    stored = WatchList(name="sellers", field="seller_id")
    (p,), _ = validate_profiles([profile([
        {"field": "seller_id", "op": "in_watch_list", "watch_list": "sellers"},
        {"field": "tax_rate", "op": "between", "values": [0.1, 0.2]}])],
        extra_columns={"seller_id": "string", "tax_rate": "number"}, stored_watchlists=[stored])
    assert p.conditions[1].values == (0.1, 0.2)


def test_the_same_version_twice_is_refused():
    doc = profile([{"field": "importer_id", "op": "is_null"}])
    with pytest.raises(ProfileError, match="version 1 appears twice"):
        validate_profiles([doc, doc])


def test_no_expression_strings_are_accepted():
    with pytest.raises(ValidationError):
        Condition(field="hs_code", op="eval", values=("__import__('os')",))  # type: ignore[arg-type]


def test_free_text_of_profiles_and_watch_lists_is_bounded_and_without_nul():
    """A 1 MB name or a 100 KB criterion was stored (and the criterion copied into the rule hits of every
    item it matched); a NUL in a name or an entry value was stored, where declarations refuse it."""
    ok = {"field": "customs_value", "op": "between", "values": [1, 2]}
    for kw, field, message in (({"name": "a\x00b"}, "name", "expected text without a NUL (U+0000) character"),
                               ({"name": "x" * 501}, "name", "at most 500 characters"),
                               ({"criterion": "y" * 5_001}, "criterion", "at most 5,000 characters (got 5,001)"),
                               ({"conditions": [ok] * 201}, "conditions", "at most 200 conditions (got 201)")):
        with pytest.raises(ProfileError) as exc:
            validate_profiles([{**profile([ok]), **kw}])
        (problem,) = exc.value.problems
        assert problem.field == field and message in problem.message, problem
    lst = {"name": "W", "field": "importer_id", "entries": [{"value": "I\x001", "reason": "r", "added_by": "a"}]}
    with pytest.raises(ProfileError, match="entries.0.value.*without a NUL"):
        validate_profiles([], [lst])
    assert validate_profiles([profile([ok], name="x" * 500, criterion="y" * 5_000)])  # the bounds themselves pass
