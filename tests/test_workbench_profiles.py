"""Profile and watch-list pages through the app in-process (TestClient): several conditions, editing as a
new version, watch lists with entries, each through the same ProfileStore as the API and audited."""

from __future__ import annotations

import html as html_text
import re
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from serving.store import audit_events
from tests.conftest import Api
from tests.test_profiles_api import decl, outcome, rank
from tests.test_workbench import csrf_of, signed_in


@pytest.fixture
def api(make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.delenv("RISKPROF_SESSION_SECRET", raising=False)
    return make_api()


def profile_form(token: str, **kw: str) -> dict[str, str]:
    """A filled-in profile form: three condition rows, the first hs_code prefix 8206, the others empty."""
    form = {"csrf_token": token, "rows": "3", "id": "P-TWO", "name": "tools by road",
            "criterion": "hand tools from TR by road", "c1_field": "hs_code", "c1_op": "prefix", "c1_values": "8206",
            "c2_field": "", "c2_op": "in", "c2_values": "", "c3_field": "", "c3_op": "in", "c3_values": "",
            "lane": "red", "select": "on", "valid_from": "2023-01-01", "status": "active"}
    form.update(kw)
    return form


def web_events(api: Api, action: str) -> list[dict[str, Any]]:
    with api.store.engine.connect() as conn:
        return list(conn.execute(sa.select(audit_events.c.params).where(audit_events.c.endpoint == f"web/{action}")
                                 .order_by(audit_events.c.id)).scalars())


def error_of(html: str, name: str) -> str:
    found = re.search(rf'id="{name}-error"><span class="visually-hidden">Error:</span> ([^<]*)</p>', html)
    assert found, f"no error beside {name}"
    return html_text.unescape(found.group(1))


# ---- profiles ------------------------------------------------------------------------------------
def test_a_profile_with_several_conditions_is_created_and_blank_rows_are_ignored(api: Api) -> None:
    token = signed_in(api, "analyst")
    r = api.client.post("/app/profiles", data=profile_form(token, c3_field="origin_country", c3_op="in",
                                                           c3_values="tr, DE"), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/profiles/P-TWO"
    stored = api.get("/v1/profiles/P-TWO", role="officer").json()
    assert stored["conditions"] == [{"field": "hs_code", "op": "prefix", "values": ["8206"], "watch_list": None},
                                    {"field": "origin_country", "op": "in", "values": ["TR", "DE"], "watch_list": None}]
    assert stored["action"] == {"lane": "red", "select": True, "alert": False}
    assert stored["owner"] == "test-analyst" and stored["valid_to"] is None
    assert web_events(api, "profile-create") == [{"profile_id": "P-TWO"}]


def test_a_bad_condition_is_named_by_its_row_beside_its_field_and_nothing_is_stored(api: Api) -> None:
    token = signed_in(api, "analyst")
    r = api.client.post("/app/profiles", data=profile_form(token, c2_field="origin_country", c2_op="prefix",
                                                           c2_values="TR", valid_to="2022-01-01"))
    assert r.status_code == 422
    assert error_of(r.text, "c2_op").startswith("Condition 2: operator 'prefix' does not fit a country field")
    assert "valid_to 2022-01-01 is before valid_from 2023-01-01" in error_of(r.text, "valid_to")
    assert 'href="#c2_op"' in r.text and 'href="#valid_to"' in r.text  # the error summary links to the fields
    assert 'value="tools by road"' in r.text  # what was typed is kept
    r = api.client.post("/app/profiles", data=profile_form(token, c2_field="importer_id", c2_op="in_watch_list",
                                                           c2_values="IMP1", c2_watch_list="WL-NONE"))
    assert error_of(r.text, "c2_watch_list") == "Condition 2: unknown watch list 'WL-NONE'"
    r = api.client.post("/app/profiles", data=profile_form(token, c2_field="importer_id", c2_op="is_null",
                                                           c2_values="IMP1"))
    assert error_of(r.text, "c2_values") == "Condition 2: is_null takes no values"
    r = api.client.post("/app/profiles", data=profile_form(token, c3_values="9301", c1_values="9x"))
    assert error_of(r.text, "c3_field") == "Condition 3: choose the field this condition tests"  # values, no field
    assert "HS prefix" in error_of(r.text, "c1_values")  # and the store's problems at the same time
    r = api.client.post("/app/profiles", data=profile_form(token, c1_field="", c1_values="", name=""))
    assert error_of(r.text, "c1_field") == "Condition 1: a profile needs at least one condition"
    assert error_of(r.text, "name") == "Enter a name"
    assert api.get("/v1/profiles", role="officer").json()["count"] == 0


def test_add_a_condition_works_without_javascript_and_saves_nothing(api: Api) -> None:
    token = signed_in(api, "analyst")
    r = api.client.post("/app/profiles", data={**profile_form(token), "add_condition": "1"})
    assert r.status_code == 200 and 'name="c4_field"' in r.text and 'name="c5_field"' not in r.text
    assert 'name="rows" value="4"' in r.text and 'value="8206"' in r.text
    assert api.get("/v1/profiles", role="officer").json()["count"] == 0
    r = api.client.post("/app/profiles", data=profile_form(token, rows="4", c4_field="conveyance", c4_op="in",
                                                           c4_values="vehicle"), follow_redirects=False)
    assert r.status_code == 303
    assert [c["field"] for c in api.get("/v1/profiles/P-TWO").json()["conditions"]] == ["hs_code", "conveyance"]


def test_editing_saves_a_new_version_and_the_profile_page_lists_the_versions(api: Api) -> None:
    token = signed_in(api, "analyst")
    api.client.post("/app/profiles", data=profile_form(token))
    page = api.client.get("/app/profiles/P-TWO/edit")
    assert page.status_code == 200 and 'name="base_version" value="1"' in page.text
    assert 'value="8206"' in page.text and 'name="c2_field"' in page.text  # a free row to add a condition
    edited = profile_form(token, base_version="1", c2_field="conveyance", c2_op="in", c2_values="vehicle",
                          status="draft", id="IGNORED")  # the path names the profile, as PUT /v1/profiles/{id}
    r = api.client.post("/app/profiles/P-TWO/edit", data=edited, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/profiles/P-TWO?saved=new"
    stored = api.get("/v1/profiles/P-TWO", role="officer").json()
    assert stored["version"] == 2 and stored["versions"] == [1, 2] and stored["status"] == "draft"
    assert [c["field"] for c in stored["conditions"]] == ["hs_code", "conveyance"]
    assert api.get("/v1/profiles/P-TWO?version=1").json()["status"] == "active"  # version 1 kept as it was
    assert web_events(api, "profile-edit") == [{"profile_id": "P-TWO", "version": 2}]

    page = api.client.get("/app/profiles/P-TWO?saved=new").text
    assert "Saved as version 2." in page
    versions = page[page.index('id="profile-versions"'):]
    assert re.findall(r"<td>(create|change)</td>", versions) == ["change", "create"]
    assert 'href="/app/profiles/P-TWO?version=1"' in versions
    old = api.client.get("/app/profiles/P-TWO?version=1").text
    assert "This is version 1" in old and "/edit" not in old  # an old version is read, never edited
    for version in ("7", "x", "0"):
        assert api.client.get(f"/app/profiles/P-TWO?version={version}").status_code == 404, version

    again = {**edited, "base_version": "2"}
    r = api.client.post("/app/profiles/P-TWO/edit", data=again, follow_redirects=False)
    assert r.headers["location"] == "/app/profiles/P-TWO?saved=unchanged"  # nothing changed: no version 3
    assert api.get("/v1/profiles/P-TWO").json()["versions"] == [1, 2]
    stale = api.client.post("/app/profiles/P-TWO/edit", data={**edited, "base_version": "1", "c2_values": "rail"})
    assert stale.status_code == 422 and "changed while you edited it (now version 2)" in stale.text
    bad = api.client.post("/app/profiles/P-TWO/edit", data={**again, "c2_field": "customs_value", "c2_values": "", "c2_op": "between"})
    assert bad.status_code == 422 and error_of(bad.text, "c2_values").startswith("Condition 2: ")
    assert api.get("/v1/profiles/P-TWO").json()["versions"] == [1, 2]
    assert api.client.get("/app/profiles/P-NONE/edit").status_code == 404


def test_an_officer_reads_a_profile_without_edit_or_retire(api: Api) -> None:
    assert api.post("/v1/profiles", role="analyst", json={
        "id": "P-R", "name": "r", "criterion": "c", "conditions": [{"field": "hs_code", "op": "prefix",
                                                                    "values": ["93"]}],
        "action": {"alert": True}, "valid_from": "2023-01-01", "owner": "a"}).status_code == 201
    signed_in(api, "officer")
    page = api.client.get("/app/profiles/P-R").text
    assert "Edit this profile" not in page and "Retire this profile" not in page and "Version 1" not in page
    assert "/app/watchlists" in page  # the navigation names the watch lists
    assert 'href="/app/profiles/P-R"' in api.client.get("/app/profiles?status=draft").text  # a draft by default
    assert "No active profiles." in api.client.get("/app/profiles?status=active").text


def test_retiring_a_retired_profile_again_records_nothing(api: Api) -> None:
    """A second press of Retire (a double click, the back button) added a second web/profile-retire audit
    event, though nothing changed."""
    assert api.post("/v1/profiles", role="analyst", json={
        "id": "P-RR", "name": "r", "criterion": "c", "conditions": [{"field": "hs_code", "op": "prefix",
                                                                     "values": ["93"]}],
        "action": {"alert": True}, "valid_from": "2023-01-01", "owner": "a"}).status_code == 201
    token = signed_in(api, "analyst")
    for _ in range(2):
        r = api.client.post("/app/profiles/P-RR/retire", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/app/profiles/P-RR"
    assert api.get("/v1/profiles/P-RR").json()["versions"] == [1, 2]
    assert web_events(api, "profile-retire") == [{"profile_id": "P-RR"}]


# ---- watch lists ---------------------------------------------------------------------------------
def test_a_watch_list_is_created_entries_added_and_removed_each_a_new_version(api: Api) -> None:
    token = signed_in(api, "analyst")
    r = api.client.post("/app/watchlists", data={"csrf_token": token, "name": "WL-ORIGINS", "field": "origin_country",
                                                 "description": "origins of recent seizures", "lane": "yellow"},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/watchlists/WL-ORIGINS"
    entry = {"csrf_token": token, "base_version": "1", "value": "tr", "reason": "tip-off 42", "expires": "2030-01-01"}
    r = api.client.post("/app/watchlists/WL-ORIGINS/entries", data=entry, follow_redirects=False)
    assert r.status_code == 303
    stored = api.get("/v1/watchlists/WL-ORIGINS", role="officer").json()
    assert stored["entries"] == [{"value": "TR", "reason": "tip-off 42", "added_by": "test-analyst", "expires": "2030-01-01"}]
    assert stored["action"] == {"lane": "yellow", "select": False, "alert": False} and stored["versions"] == [1, 2]

    again = api.client.post("/app/watchlists/WL-ORIGINS/entries", data={**entry, "base_version": "2", "value": "TR "})
    assert again.status_code == 422 and error_of(again.text, "value") == "TR is on this list already"
    bad = api.client.post("/app/watchlists/WL-ORIGINS/entries", data={**entry, "base_version": "2", "value": "XX"})
    assert bad.status_code == 422
    assert error_of(bad.text, "value") == "'XX' is not an ISO 3166 alpha-2 country code"
    bad = api.client.post("/app/watchlists/WL-ORIGINS/entries",
                          data={**entry, "base_version": "2", "reason": "", "expires": "soon"})
    assert error_of(bad.text, "reason") == "Enter the reason the value is on the list"
    assert "date" in error_of(bad.text, "expires")
    assert 'value="soon"' in bad.text  # what was typed is kept
    stale = api.client.post("/app/watchlists/WL-ORIGINS/entries", data={**entry, "value": "DE"})
    assert stale.status_code == 422 and "now version 2" in stale.text
    assert api.get("/v1/watchlists/WL-ORIGINS").json()["versions"] == [1, 2]

    page = api.client.get("/app/watchlists/WL-ORIGINS").text
    entries = page[page.index('id="watchlist-entries"'):page.index("</table>", page.index('id="watchlist-entries"'))]
    assert re.findall(r"<td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td>", entries) == [("TR", "tip-off 42", "test-analyst")]
    r = api.client.post("/app/watchlists/WL-ORIGINS/entries/remove",
                        data={"csrf_token": token, "base_version": "2", "value": "TR"}, follow_redirects=False)
    assert r.status_code == 303
    assert api.get("/v1/watchlists/WL-ORIGINS").json()["entries"] == []
    assert web_events(api, "watchlist-create") == [{"name": "WL-ORIGINS"}]
    assert web_events(api, "watchlist-add") == [{"name": "WL-ORIGINS", "value": "tr", "reason": "tip-off 42"}]
    assert web_events(api, "watchlist-remove") == [{"name": "WL-ORIGINS", "value": "TR"}]
    listed = api.client.get("/app/watchlists").text
    assert re.search(r'WL-ORIGINS</a></td>\s*<td>origin_country</td>\s*<td class="num">0</td>', listed)


def test_a_new_watch_list_is_checked_by_the_store_and_its_problems_shown_beside_the_fields(api: Api) -> None:
    token = signed_in(api, "analyst")
    form = {"csrf_token": token, "name": "bad name!", "field": "customs_value"}
    r = api.client.post("/app/watchlists", data=form)
    assert r.status_code == 422
    assert "pattern" in error_of(r.text, "name")
    r = api.client.post("/app/watchlists", data={**form, "name": "WL-V"})
    assert error_of(r.text, "field") == "a float field cannot hold a watch list"
    r = api.client.post("/app/watchlists", data={**form, "name": "WL-V", "field": ""})
    assert error_of(r.text, "field") == "Choose the field whose values the list holds"
    assert api.get("/v1/watchlists", role="officer").json()["count"] == 0
    api.client.post("/app/watchlists", data={**form, "name": "WL-V", "field": "importer_id"})
    r = api.client.post("/app/watchlists", data={**form, "name": "WL-V", "field": "importer_id"})
    assert r.status_code == 422 and "exists already" in error_of(r.text, "name")


def test_a_profile_names_a_watch_list_and_the_list_shows_its_effectiveness(api: Api) -> None:
    token = signed_in(api, "analyst")
    api.client.post("/app/watchlists", data={"csrf_token": token, "name": "WL-IMP", "field": "importer_id",
                                             "lane": "red", "select": "on"})
    for version, value in ((1, "IMP000001"), (2, "IMP000002")):
        added = api.client.post("/app/watchlists/WL-IMP/entries", data={
            "csrf_token": token, "value": value, "reason": "seizure C-1", "base_version": str(version)},
            follow_redirects=False)
        assert added.status_code == 303, added.text
    # a hand-made post without the version the form carries is refused: it saved over any later version
    blank = api.client.post("/app/watchlists/WL-IMP/entries", data={
        "csrf_token": token, "value": "IMP000003", "reason": "x", "base_version": ""})
    assert blank.status_code == 422 and "changed while you edited it (now version 3)" in blank.text
    r = api.client.post("/app/profiles", data=profile_form(token, id="P-WL", c1_field="importer_id",
                                                           c1_op="in_watch_list", c1_values="", c1_watch_list="WL-IMP"),
                        follow_redirects=False)
    assert r.status_code == 303, r.text
    assert api.get("/v1/profiles/P-WL").json()["conditions"][0]["watch_list"] == "WL-IMP"
    missing = api.client.post("/app/profiles", data=profile_form(token, id="P-WL2", c1_field="importer_id",
                                                                 c1_op="in_watch_list", c1_values=""))
    assert missing.status_code == 422 and "unknown watch list" in error_of(missing.text, "c1_watch_list")

    ranked = rank(api, [decl(i) for i in range(1, 6)], 2)
    picked = {it["declaration_id"]: it["selection"] for it in ranked["items"]}
    assert picked["T-0001"] == picked["T-0002"] == "rule"
    assert api.post("/v1/outcomes", json=[outcome("T-0001", True, "rule"), outcome("T-0002", False, "rule")],
                    role="officer").status_code == 200
    api.audit()
    page = api.client.get("/app/watchlists/WL-IMP").text
    assert 'href="/app/profiles/P-WL">P-WL</a>' in page  # used by
    stats = dict(re.findall(r"<tr><td>([a-z ]+)</td><td class=\"num\">([^<]*)</td></tr>", page))
    assert (stats["matches"], stats["inspections"], stats["hits"], stats["hit rate"]) == ("2", "2", "1", "0.500")
    assert "<td>hit rate, 95 % interval</td><td class=\"num\">0.095 to 0.905</td>" in page  # Wilson, 1 in 2
    assert stats["candidate for retirement"] == "no"
    api_stats = api.get("/v1/profiles/P-WL/stats").json()
    assert (api_stats["matches"], api_stats["hits"]) == (2, 1)  # the profile counts its own matches too


def test_an_officer_reads_watch_lists_without_the_analyst_forms(api: Api) -> None:
    assert api.post("/v1/watchlists", role="analyst", json={
        "name": "WL-O", "field": "hs_code", "entries": [{"value": "9301", "reason": "arms", "added_by": "a",
                                                         "expires": "2020-01-01"}]}).status_code == 201
    token = signed_in(api, "officer")
    listed = api.client.get("/app/watchlists").text
    assert "WL-O" in listed and "Create a watch list" not in listed
    page = api.client.get("/app/watchlists/WL-O").text
    assert "9301" in page and "expired" in page and "Add the entry" not in page and "Remove" not in page
    assert "no action of its own" in page
    assert api.client.get("/app/watchlists/WL-NONE").status_code == 404
    r = api.client.post("/app/watchlists/WL-O/entries", data={"csrf_token": token, "value": "9302", "reason": "x"})
    assert r.status_code == 403
    assert csrf_of(page) == token


def test_a_profile_with_more_conditions_than_the_form_adds_keeps_them_all_when_edited(api: Api) -> None:
    conditions = [{"field": "hs_code", "op": "not_in", "values": [f"{930100 + i}"]} for i in range(22)]
    assert api.post("/v1/profiles", role="analyst", json={
        "id": "P-MANY", "name": "many", "criterion": "c", "conditions": conditions, "action": {"alert": True},
        "valid_from": "2023-01-01", "owner": "a"}).status_code == 201
    token = signed_in(api, "analyst")
    page = api.client.get("/app/profiles/P-MANY/edit").text
    assert 'name="c22_values"' in page and 'name="c23_field"' not in page and "Add a condition" not in page
    form = dict(re.findall(r'name="(c\d+_values)" type="text" value="([^"]*)"', page))
    fields = {f"c{i}_{part}": v for i in range(1, 23) for part, v in
              (("field", "hs_code"), ("op", "not_in"), ("values", form[f"c{i}_values"]))}
    r = api.client.post("/app/profiles/P-MANY/edit", data={
        "csrf_token": token, "rows": "22", "base_version": "1", "name": "many", "criterion": "c", "alert": "on",
        "valid_from": "2023-01-01", "status": "draft", **fields}, follow_redirects=False)
    assert r.headers["location"] == "/app/profiles/P-MANY?saved=unchanged"  # all 22 came back, nothing lost


def test_editing_a_watch_list_changes_its_action_and_keeps_its_entries(api: Api) -> None:
    assert api.post("/v1/watchlists", role="analyst", json={
        "name": "WL-E", "field": "hs_code", "description": "arms",
        "entries": [{"value": "9301", "reason": "arms", "added_by": "a"}]}).status_code == 201
    token = signed_in(api, "analyst")
    page = api.client.get("/app/watchlists/WL-E/edit").text
    assert 'name="base_version" value="1"' in page and 'value="arms"' in page and 'name="field"' not in page
    form = {"csrf_token": token, "base_version": "1", "description": "arms and parts", "lane": "red", "alert": "on",
            "name": "WL-OTHER", "field": "importer_id"}  # name and field are the list's, whatever is posted
    r = api.client.post("/app/watchlists/WL-E/edit", data=form, follow_redirects=False)
    assert r.headers["location"] == "/app/watchlists/WL-E?saved=new"
    stored = api.get("/v1/watchlists/WL-E").json()
    assert (stored["field"], stored["description"], stored["versions"]) == ("hs_code", "arms and parts", [1, 2])
    assert stored["action"] == {"lane": "red", "select": False, "alert": True}
    assert [e["value"] for e in stored["entries"]] == ["9301"]
    assert api.get("/v1/watchlists", role="officer").json()["count"] == 1
    r = api.client.post("/app/watchlists/WL-E/edit", data={**form, "base_version": "2"}, follow_redirects=False)
    assert r.headers["location"] == "/app/watchlists/WL-E?saved=unchanged"
    stale = api.client.post("/app/watchlists/WL-E/edit", data={**form, "lane": ""})
    assert stale.status_code == 422 and "now version 2" in stale.text
    assert web_events(api, "watchlist-edit") == [{"name": "WL-E", "version": 2}]


def test_the_effectiveness_table_shows_intervals_and_flags_a_profile_that_finds_nothing() -> None:
    from serving.web.profile_pages import stats_of

    row = {"kind": "profile", "rule_id": "P-X", "versions": [1], "matches": 40, "inspections": 30, "hits": 0,
           "hit_rate": 0.0, "hit_rate_low": 0.0, "hit_rate_high": 0.11352, "model_inspections": 0, "model_hits": 0,
           "model_hit_rate": float("nan"), "model_hit_rate_low": float("nan"), "model_hit_rate_high": float("nan"),
           "candidate_for_retirement": True}
    shown = stats_of(pd.DataFrame([row]), "profile")
    assert shown is not None
    assert (shown["hit rate"], shown["hit rate, 95 % interval"]) == ("0.000", "0.000 to 0.114")
    assert (shown["model hit rate"], shown["model hit rate, 95 % interval"]) == ("–", "–")  # no model inspections
    assert shown["candidate for retirement"] == "yes: 30 or more inspections, no hit"
    assert stats_of(pd.DataFrame([row]), "watch_list") is None  # a list of the same name is another rule
    every = stats_of(pd.DataFrame([{**row, "hits": 30, "hit_rate": 1.0, "hit_rate_low": 0.886, "hit_rate_high": 1.0}]),
                     "profile")
    assert (every["hit rate"], every["hit rate, 95 % interval"]) == ("1.000", "0.886 to 1.000")  # not "1"


def test_a_long_watch_list_is_shown_in_pages_and_searched(api: Api) -> None:
    entries = [{"value": f"IMP{i:06d}", "reason": "r", "added_by": "a"} for i in range(120)]
    assert api.post("/v1/watchlists", role="analyst", json={"name": "WL-LONG", "field": "importer_id",
                                                             "entries": entries}).status_code == 201
    signed_in(api, "officer")

    def values(html: str) -> list[str]:
        return re.findall(r"<td>(IMP\d+)</td>", html)

    first = api.client.get("/app/watchlists/WL-LONG").text
    assert values(first) == [f"IMP{i:06d}" for i in range(50)] and "Page 1 of 3" in first
    last = api.client.get("/app/watchlists/WL-LONG?page=3").text
    assert values(last) == [f"IMP{i:06d}" for i in range(100, 120)]
    assert values(api.client.get("/app/watchlists/WL-LONG?page=99").text) == values(last)  # the last page
    assert values(api.client.get("/app/watchlists/WL-LONG?page=x").text) == values(first)
    found = api.client.get("/app/watchlists/WL-LONG?q=imp00011").text
    assert values(found) == [f"IMP{i:06d}" for i in range(110, 120)]  # case-insensitive, anywhere in the value
    assert "10 of 120 entries" in found and "Page 1 of" not in found
    assert "No entry contains" in api.client.get("/app/watchlists/WL-LONG?q=nobody").text


def test_acknowledging_an_alert_returns_to_the_list_as_it_was_filtered(api: Api) -> None:
    """From /app/alerts?status=open, Acknowledge landed on every alert, the filter gone."""
    from tests.test_profiles_api import profile

    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    for i in (1, 2):
        assert api.post("/v1/score", json=decl(i, hs="820600")).status_code == 200
    token = signed_in(api)
    listed = api.client.get("/app/alerts?status=open").text
    assert 'name="status" value="open"' in listed
    first, second = (a["id"] for a in api.get("/v1/alerts?status=open", role="officer").json()["alerts"])
    r = api.client.post(f"/app/alerts/{first}/ack", data={"csrf_token": token, "status": "open"},
                        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/alerts?status=open"
    r = api.client.post(f"/app/alerts/{second}/ack", data={"csrf_token": token, "status": "<script>"},
                        follow_redirects=False)
    assert r.headers["location"] == "/app/alerts"  # only a status the page takes is carried back
    assert "No alerts." in api.client.get("/app/alerts?status=open").text


@pytest.mark.parametrize("alert_id", ["999", "9" * 40, "0", "-5"])
def test_acknowledging_an_alert_that_does_not_exist_is_a_not_found_page(api: Api, alert_id: str) -> None:
    """Ids past a database integer (found by fuzzing the forms: SQLite's OverflowError was a 500) are no
    alert either; the API refuses them by its path's bounds."""
    token = signed_in(api)
    r = api.client.post(f"/app/alerts/{alert_id}/ack", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 404 and "Alert not found" in r.text, r.text[:300]
    assert api.post(f"/v1/alerts/{alert_id}/ack", role="officer").status_code in (404, 422)


def test_a_too_long_watch_list_description_is_named_beside_the_description(api: Api) -> None:
    """It was shown beside "Field" on the create form, and on the edit form (which has no field box) beside
    nothing at all, its summary link leading nowhere."""
    token = signed_in(api, "analyst")
    long = "d" * 5_001
    r = api.client.post("/app/watchlists", data={"csrf_token": token, "name": "WL-D", "field": "importer_id",
                                                 "description": long})
    assert r.status_code == 422
    assert error_of(r.text, "description") == "at most 5,000 characters (got 5,001)"
    assert 'id="field-error"' not in r.text and 'href="#description"' in r.text
    assert f'value="{long}"' in r.text  # what was typed is kept
    api.client.post("/app/watchlists", data={"csrf_token": token, "name": "WL-D", "field": "importer_id"})
    r = api.client.post("/app/watchlists/WL-D/edit", data={"csrf_token": token, "base_version": "1",
                                                           "description": long})
    assert r.status_code == 422
    assert error_of(r.text, "description") == "at most 5,000 characters (got 5,001)"
    assert 'href="#description"' in r.text
    assert api.get("/v1/watchlists/WL-D").json()["versions"] == [1]


def test_an_unknown_profile_status_is_refused_as_the_api_refuses_it(api: Api) -> None:
    """``/app/profiles?status=actve`` said "No actve profiles." while ``GET /v1/profiles?status=actve`` is a 422
    (the alerts page refuses an unknown status the same way)."""
    signed_in(api)
    assert api.get("/v1/profiles?status=actve", role="officer").status_code == 422
    r = api.client.get("/app/profiles?status=actve")
    assert r.status_code == 400 and "is not a profile status: draft, active or retired" in html_text.unescape(r.text)
    assert "No actve profiles" not in r.text
    assert api.client.get("/app/profiles?status=retired").status_code == 200


def test_the_profile_form_shows_every_problem_at_once(api: Api) -> None:
    """A bad "Valid from" and a condition on a watch list that does not exist: only the date was shown, the
    condition's problem only after the date was fixed (the conditions were checked once the profile parsed)."""
    token = signed_in(api, "analyst")
    form = profile_form(token, valid_from="01.12.2023", c2_field="importer_id", c2_op="in_watch_list",
                        c2_watch_list="WL-NONE")
    r = api.client.post("/app/profiles", data=form)
    assert r.status_code == 422
    assert error_of(r.text, "valid_from") == "'01.12.2023' is not a date: expected YYYY-MM-DD"
    assert "unknown watch list 'WL-NONE'" in error_of(r.text, "c2_watch_list")
    from profiles import ProfileError, validate_profiles

    doc = {"id": "P-Y", "name": "n", "criterion": "c", "valid_from": "01.12.2023", "owner": "a", "action": {"alert": True},
           "conditions": [{"field": "hs_code", "op": "prefix", "values": ["93"]},
                          {"field": "importer_id", "op": "in_watch_list", "watch_list": "WL-NONE"},
                          {"field": "no_such_field", "op": "in", "values": ["x"]}]}
    with pytest.raises(ProfileError) as raised:
        validate_profiles([doc])
    assert [(p.field, p.condition) for p in raised.value.problems] == [
        ("valid_from", None), ("importer_id", 1), ("no_such_field", 2)]


def test_a_date_in_the_wrong_format_is_named_as_the_outcome_form_names_it(api: Api) -> None:
    """A profile's "Valid from" of 01.12.2023 or an entry's expiry of 31/12/2027 said "Input should be a valid
    date or datetime, invalid character in year" (pydantic's words, on the page and in the API's 422); the
    outcome form and the declaration contract say "'…' is not a date: expected YYYY-MM-DD"."""
    token = signed_in(api, "analyst")
    r = api.client.post("/app/profiles", data=profile_form(token, valid_from="01.12.2023", valid_to="2024-13-01"))
    assert r.status_code == 422
    assert error_of(r.text, "valid_from") == "'01.12.2023' is not a date: expected YYYY-MM-DD"
    assert error_of(r.text, "valid_to") == "'2024-13-01' is not a date: expected YYYY-MM-DD"
    assert 'value="01.12.2023"' in r.text
    api.client.post("/app/watchlists", data={"csrf_token": token, "name": "WL-X", "field": "importer_id"})
    r = api.client.post("/app/watchlists/WL-X/entries", data={"csrf_token": token, "base_version": "1",
                                                              "value": "IMP1", "reason": "tip", "expires": "31/12/2027"})
    assert r.status_code == 422 and error_of(r.text, "expires") == "'31/12/2027' is not a date: expected YYYY-MM-DD"
    api_answer = api.post("/v1/profiles", role="analyst", json={
        "id": "P-API", "name": "n", "criterion": "c", "conditions": [{"field": "conveyance", "op": "in", "values": ["mail"]}],
        "action": {"lane": "red"}, "valid_from": "01.12.2023", "owner": "a"})
    assert api_answer.status_code == 422
    assert "'01.12.2023' is not a date: expected YYYY-MM-DD" in str(api_answer.json())
