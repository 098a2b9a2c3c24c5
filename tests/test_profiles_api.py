"""Risk profiles, watch lists and alerts through the real app (tiny model, SQLite store in tmp_path):
who may write, validation, capacity order, what never fires, versions, alerts and effectiveness."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from serving.profile_store import Actor, ProfileStore, alerts, profile_changes, profile_versions
from serving.store import audit_rule_hits
from tests.conftest import Api

DECL: dict[str, Any] = {
    "declaration_id": "T-0001", "declaration_date": "2023-06-01", "direction": "import", "office_type": "seaport",
    "importer_id": "IMP000123", "origin_country": "CN", "departure_country": "CN", "transit_countries": ["AE"],
    "destination_country": "YE", "conveyance": "vessel", "hs_code": "820600", "goods_description": "hardware, lamp",
    "quantity": 1234, "gross_weight_kg": 5400.0, "customs_value": 8200.0, "currency": "USD",
}
TOOLS = "8206"  # the profiles below match hand tools; other declarations carry furniture (940360)


def decl(i: int, hs: str = "940360", **kw: Any) -> dict[str, Any]:
    return {**DECL, "declaration_id": f"T-{i:04d}", "hs_code": hs, "importer_id": f"IMP{i:06d}", **kw}


def profile(pid: str = "P-TOOLS", **kw: Any) -> dict[str, Any]:
    doc = {"id": pid, "name": "hand tools", "criterion": "hand tools (HS 8206): cover goods in recent seizures",
           "conditions": [{"field": "hs_code", "op": "prefix", "values": [TOOLS]}],
           "action": {"lane": "red", "select": True, "alert": True}, "valid_from": "2023-01-01",
           "status": "active", "owner": "analyst1"}
    doc.update(kw)
    return doc


@pytest.fixture
def api(make_api: Callable[..., Api]) -> Api:
    return make_api()


def rows(api: Api, table: sa.Table) -> list[dict[str, Any]]:
    with api.store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).order_by(table.c.id)).mappings()]


def rank(api: Api, records: list[dict[str, Any]], capacity: Any, **params: Any) -> dict[str, Any]:
    r = api.post("/v1/manifests/rank", json={"declarations": records, "capacity": capacity, **params})
    assert r.status_code == 200, r.text
    return r.json()


# ---- access and validation -----------------------------------------------------------------------
def test_officers_read_profiles_but_cannot_write_them(api: Api) -> None:
    assert api.post("/v1/profiles", role="officer", json=profile()).status_code == 403
    assert api.client.put("/v1/profiles/P-TOOLS", headers=api.h("officer"), json=profile()).status_code == 403
    assert api.post("/v1/watchlists", role="officer", json={"name": "w", "field": "importer_id"}).status_code == 403
    assert rows(api, profile_versions) == []
    created = api.post("/v1/profiles", role="analyst", json=profile())
    assert created.status_code == 201, created.text
    assert created.json()["profiles"] == [{"id": "P-TOOLS", "version": 1, "status": "active"}]
    listed = api.get("/v1/profiles", role="officer").json()
    assert [p["id"] for p in listed["profiles"]] == ["P-TOOLS"]
    change = rows(api, profile_changes)[0]
    assert (change["actor"], change["role"], change["action"], change["version"]) == (
        "test-analyst", "analyst", "create", 1)


def test_an_invalid_profile_is_422_naming_profile_condition_and_problem_and_nothing_is_stored(api: Api) -> None:
    bad = profile("P-BAD", conditions=[{"field": "hs_code", "op": "prefix", "values": [TOOLS]},
                                       {"field": "colour", "op": "in", "values": ["red"]}])
    r = api.post("/v1/profiles", role="analyst", json=[profile("P-GOOD"), bad])
    assert r.status_code == 422
    (problem,) = r.json()["detail"]
    assert (problem["id"], problem["condition"], problem["field"]) == ("P-BAD", 1, "colour")
    assert "unknown field" in problem["problem"]
    assert rows(api, profile_versions) == [] and rows(api, profile_changes) == []
    assert api.post("/v1/profiles", role="analyst", content=b"{nope").status_code == 400


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/profiles", [profile(), {**profile("P-2"), "id": {"not": "a string"}}]),
    ("/v1/profiles", "a string"),
    ("/v1/watchlists", {"name": ["x"], "field": "importer_id"}),
])
def test_bodies_of_the_wrong_shape_are_422_with_nothing_stored(api: Api, path: str, body: Any) -> None:
    r = api.post(path, role="analyst", json=body)
    assert r.status_code == 422, r.text
    assert all({"field", "message"} <= set(p) for p in r.json()["detail"])
    assert rows(api, profile_versions) == []


def test_posting_an_existing_id_is_409_and_put_of_an_unknown_one_is_404(api: Api) -> None:
    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 409
    r = api.client.put("/v1/profiles/P-NONE", headers=api.h("analyst"), json=profile("P-NONE"))
    assert r.status_code == 404 and r.json()["detail"] == "no profile 'P-NONE'"  # the id quoted whole
    missing = api.get("/v1/profiles/P-NONE")
    assert missing.status_code == 404 and missing.json()["detail"] == "no profile 'P-NONE'"
    # a new id starts at version 1: one sent as 99 was stored as version 99
    numbered = api.post("/v1/profiles", role="analyst", json={**profile("P-99"), "version": 99})
    assert numbered.status_code == 422 and "a new profile starts at version 1, got 99" in numbered.text
    assert api.get("/v1/profiles/P-99").status_code == 404
    assert api.post("/v1/profiles", role="analyst", json={**profile("P-1"), "version": 1}).status_code == 201


# ---- the decision ------------------------------------------------------------------------------
def test_rank_fills_capacity_with_profile_selections_first_then_the_model(api: Api) -> None:
    manifest = [decl(i, hs="820600" if i in (3, 7) else "940360") for i in range(1, 11)]
    before = rank(api, manifest, 3)
    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    after = rank(api, manifest, 3)
    by_id = {it["declaration_id"]: it for it in after["items"]}
    rule = sorted(k for k, it in by_id.items() if it["selection"] == "rule")
    model = [it["declaration_id"] for it in after["items"] if it["selection"] == "model"]
    assert rule == ["T-0003", "T-0007"]
    # the one place left goes to the riskiest declaration no rule selected
    unforced = [it["declaration_id"] for it in before["items"] if it["declaration_id"] not in rule]
    assert model == unforced[:1]
    assert (after["selected_rule"], after["selected_model"], after["capacity"]) == (2, 1, 3)
    for k in rule:
        assert by_id[k]["selection_probability"] == 1.0 and by_id[k]["lane"] == "red"
        assert by_id[k]["rule_hits"] == [{"kind": "profile", "id": "P-TOOLS", "version": 1,
                                          "criterion": profile()["criterion"]}]
    # a profile never changes a score, nor the model's ranking
    assert [(it["declaration_id"], it["risk_score"], it["rank"]) for it in before["items"]] == [
        (it["declaration_id"], it["risk_score"], it["rank"]) for it in after["items"]]
    assert all(it["rule_hits"] == [] for k, it in by_id.items() if k not in rule)


@pytest.mark.parametrize("change", [
    {"status": "draft"},
    {"status": "retired"},
    {"valid_to": "2023-05-31"},  # expired before the declaration's date (2023-06-01)
    {"valid_from": "2023-06-02"},  # not yet valid
], ids=["draft", "retired", "expired", "not-yet-valid"])
def test_draft_retired_and_expired_profiles_never_fire(api: Api, change: dict[str, Any]) -> None:
    assert api.post("/v1/profiles", role="analyst", json=profile(**change)).status_code == 201
    scored = api.post("/v1/score", json=decl(1, hs="820600")).json()["results"][0]
    assert scored["rule_hits"] == []
    ranked = rank(api, [decl(1, hs="820600"), decl(2)], 1)
    assert [it["selection"] for it in ranked["items"]].count("rule") == 0
    assert api.get("/v1/alerts", role="officer").json()["count"] == 0


def test_a_retired_profile_stops_firing_and_keeps_its_versions(api: Api) -> None:
    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    assert api.post("/v1/score", json=decl(1, hs="820600")).json()["results"][0]["rule_hits"]
    retired = api.client.put("/v1/profiles/P-TOOLS", headers=api.h("analyst"), json=profile(status="retired"))
    assert retired.json()["profiles"] == [{"id": "P-TOOLS", "version": 2, "status": "retired"}]
    assert api.post("/v1/score", json=decl(2, hs="820600")).json()["results"][0]["rule_hits"] == []
    shown = api.get("/v1/profiles/P-TOOLS", role="officer").json()
    assert shown["versions"] == [1, 2] and [c["action"] for c in shown["changes"]] == ["create", "retire"]
    assert api.get("/v1/profiles/P-TOOLS?version=1").json()["status"] == "active"


def test_a_change_by_another_process_is_seen_once_the_store_is_checked_again(api: Api) -> None:
    api.service.profiles.check_seconds = 3600  # the compiled set is reused without reading the store
    assert api.post("/v1/score", json=decl(1, hs="820600")).json()["results"][0]["rule_hits"] == []
    ProfileStore(api.store.engine, {}).save([profile()], [], Actor("someone", "cli"))  # e.g. riskprof profiles
    assert api.post("/v1/score", json=decl(1, hs="820600")).json()["results"][0]["rule_hits"] == []
    api.service.profiles.check_seconds = 0.05
    time.sleep(0.1)
    assert api.post("/v1/score", json=decl(1, hs="820600")).json()["results"][0]["rule_hits"][0]["id"] == "P-TOOLS"


def test_a_changed_profile_leaves_earlier_alerts_and_records_on_the_version_they_used(api: Api) -> None:
    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    api.post("/v1/score", json=decl(1, hs="820600"))
    changed = profile(criterion="hand tools: a new seizure report")
    r = api.client.put("/v1/profiles/P-TOOLS", headers=api.h("analyst"), json=changed)
    assert r.status_code == 200 and r.json()["profiles"][0]["version"] == 2
    hit = api.post("/v1/score", json=decl(2, hs="820600")).json()["results"][0]["rule_hits"]
    assert hit == [{"kind": "profile", "id": "P-TOOLS", "version": 2, "criterion": changed["criterion"]}]
    api.audit()
    assert [(a["declaration_id"], a["version"], a["criterion"]) for a in rows(api, alerts)] == [
        ("T-0001", 1, profile()["criterion"]), ("T-0002", 2, changed["criterion"])]
    assert [(h["declaration_id"], h["rule_id"], h["version"]) for h in rows(api, audit_rule_hits)] == [
        ("T-0001", "P-TOOLS", 1), ("T-0002", "P-TOOLS", 2)]


def test_alerts_are_not_duplicated_when_a_declaration_is_scored_again(api: Api) -> None:
    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    for _ in range(3):
        api.post("/v1/score", json=[decl(1, hs="820600"), decl(2)])
    rank(api, [decl(1, hs="820600"), decl(2)], 1)
    (alert,) = api.get("/v1/alerts", role="officer").json()["alerts"]
    assert (alert["declaration_id"], alert["rule_id"], alert["version"], alert["status"]) == (
        "T-0001", "P-TOOLS", 1, "open")
    acked = api.post(f"/v1/alerts/{alert['id']}/ack", role="officer")
    assert acked.status_code == 200 and acked.json()["acked_by"] == "test-officer"
    assert api.get("/v1/alerts", role="officer").json()["count"] == 0
    assert api.get("/v1/alerts?status=acked", role="officer").json()["count"] == 1
    assert api.post("/v1/alerts/999/ack", role="officer").status_code == 404


def test_a_watch_list_acting_alone_gives_its_entry_reason(api: Api) -> None:
    wl = {"name": "importers", "field": "importer_id", "description": "importers under investigation",
          "action": {"lane": "yellow"},
          "entries": [{"value": "IMP000002", "reason": "tip-off 2023-05", "added_by": "a1"}]}
    assert api.post("/v1/watchlists", role="officer", json=wl).status_code == 403
    assert api.post("/v1/watchlists", role="analyst", json=wl).status_code == 201
    results = api.post("/v1/score", json=[decl(1), decl(2)]).json()["results"]
    assert results[0]["rule_hits"] == []
    assert results[1]["rule_hits"] == [{"kind": "watch_list", "id": "importers", "version": 1,
                                        "criterion": "importers under investigation: tip-off 2023-05"}]
    assert results[1]["lane"] in ("yellow", "red")
    assert api.get("/v1/watchlists/importers", role="officer").json()["entries"][0]["value"] == "IMP000002"


# ---- effectiveness -------------------------------------------------------------------------------
def outcome(did: str, hit: bool, source: str) -> dict[str, Any]:
    return {"declaration_id": did, "inspected_date": "2023-06-03", "inspected": True, "selection_source": source,
            "selection_probability": 1.0, "hit": hit}


def test_stats_count_matches_inspections_and_hits_beside_the_model(api: Api) -> None:
    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    manifest = [decl(i, hs="820600" if i <= 3 else "940360") for i in range(1, 7)]
    ranked = rank(api, manifest, 4)
    (model_pick,) = [it["declaration_id"] for it in ranked["items"] if it["selection"] == "model"]
    recorded = [outcome("T-0001", True, "rule"), outcome("T-0002", False, "rule"), outcome("T-0003", True, "rule"),
                outcome(model_pick, False, "model")]
    assert api.post("/v1/outcomes", json=recorded).status_code == 200
    api.audit()
    stats = api.get("/v1/profiles/P-TOOLS/stats", role="officer").json()
    assert (stats["matches"], stats["inspections"], stats["hits"]) == (3, 3, 2)
    # Wilson 95 % interval of 2 hits in 3, by hand: centre (2/3 + z²/6) / (1 + z²/3), half-width
    # z·sqrt(2/27 + z²/36) / (1 + z²/3) with z = 1.96
    assert stats["hit_rate"] == pytest.approx(2 / 3)
    assert stats["hit_rate_low"] == pytest.approx(0.2077, abs=1e-3)
    assert stats["hit_rate_high"] == pytest.approx(0.9385, abs=1e-3)
    assert (stats["model_inspections"], stats["model_hits"], stats["model_hit_rate"]) == (1, 0, 0.0)
    assert stats["versions"] == [1] and stats["candidate_for_retirement"] is False
    assert stats["status"] == "active"
    later = api.get("/v1/profiles/P-TOOLS/stats?since=2999-01-01", role="officer").json()
    assert later["matches"] == 0
    assert api.get("/v1/profiles/P-NONE/stats").status_code == 404


def test_stats_over_an_inverted_period_and_alerts_of_an_unknown_status_are_refused(api: Api) -> None:
    """since after until answered zeros, as if the profile had matched nothing; /app/alerts?status=bogus
    listed every alert."""
    from tests.test_workbench import signed_in

    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    r = api.get("/v1/profiles/P-TOOLS/stats?since=2023-01-01&until=2022-01-01")
    assert r.status_code == 422 and r.json()["detail"][0]["message"] == "until 2022-01-01 is before since 2023-01-01"
    assert api.get("/v1/profiles/P-TOOLS/stats?since=2023-01-01&until=2023-01-01").status_code == 200
    signed_in(api)
    page = api.client.get("/app/alerts?status=bogus")
    assert page.status_code == 400 and "is not an alert status: open or acked" in page.text
    assert api.client.get("/app/alerts?status=acked").status_code == 200


def test_a_put_whose_body_names_another_profile_or_list_is_refused(api: Api) -> None:
    """PUT /v1/profiles/P-TOOLS with "id": "OTHER" changed P-TOOLS and ignored the body's id (a copy of
    another profile edited by mistake); the same for a watch list's name."""
    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    r = api.client.put("/v1/profiles/P-TOOLS", headers=api.h("analyst"), json={**profile("OTHER"), "name": "x"})
    assert r.status_code == 422 and "the body is profile 'OTHER', the path 'P-TOOLS'" in r.text
    assert api.get("/v1/profiles/P-TOOLS").json()["versions"] == [1]
    assert api.client.put("/v1/profiles/P-TOOLS", headers=api.h("analyst"),
                          json={**profile(), "name": "renamed"}).status_code == 200
    wl = {"name": "WL-A", "field": "importer_id", "entries": []}
    assert api.post("/v1/watchlists", role="analyst", json=wl).status_code == 201
    r = api.client.put("/v1/watchlists/WL-A", headers=api.h("analyst"), json={**wl, "name": "WL-B"})
    assert r.status_code == 422 and "the body is watch list 'WL-B', the path 'WL-A'" in r.text


def test_if_match_refuses_a_change_made_on_an_older_version(api: Api) -> None:
    """Two analysts read P-TOOLS at version 1 and change it; the second PUT silently undid the first.
    GET sends the version as ETag; a PUT with If-Match of a version that is no longer the latest is 412
    with nothing stored; without the header nothing changes for existing clients."""
    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    got = api.get("/v1/profiles/P-TOOLS")
    assert got.headers["etag"] == '"1"'
    first = api.client.put("/v1/profiles/P-TOOLS", headers={**api.h("analyst"), "If-Match": got.headers["etag"]},
                           json={**profile(), "name": "first analyst"})
    assert first.status_code == 200 and first.json()["profiles"][0]["version"] == 2
    assert first.headers["etag"] == '"2"'  # the next change's If-Match, without another GET
    same = api.client.put("/v1/profiles/P-TOOLS", headers=api.h("analyst"), json={**profile(), "name": "first analyst"})
    assert same.json() == {"profiles": [], "watch_lists": []} and same.headers["etag"] == '"2"'  # nothing changed
    second = api.client.put("/v1/profiles/P-TOOLS", headers={**api.h("analyst"), "If-Match": '"1"'},
                            json={**profile(), "criterion": "second analyst, made on version 1"})
    assert second.status_code == 412, second.text
    assert second.json() == {"detail": "profile 'P-TOOLS' is at version 2, not 1: another change came first; "
                                       "nothing was stored, read it again and make the change on the latest "
                                       "version", "current_version": 2}
    now = api.get("/v1/profiles/P-TOOLS").json()
    assert (now["versions"], now["name"]) == ([1, 2], "first analyst")
    assert api.client.put("/v1/profiles/P-TOOLS", headers={**api.h("analyst"), "If-Match": 'W/"2"'},
                          json={**profile(), "name": "third"}).status_code == 200
    for bad in ("abc", '"0"', '"1", "2"'):
        r = api.client.put("/v1/profiles/P-TOOLS", headers={**api.h("analyst"), "If-Match": bad}, json=profile())
        assert r.status_code == 412 and "names no version of the profile" in r.json()["detail"], bad
    assert api.client.put("/v1/profiles/P-TOOLS", headers={**api.h("analyst"), "If-Match": "*"},
                          json={**profile(), "name": "fourth"}).status_code == 200
    assert api.get("/v1/profiles/P-TOOLS").json()["versions"] == [1, 2, 3, 4]
    assert api.get("/v1/profiles/P-TOOLS?version=2").headers["etag"] == '"2"'

    wl = {"name": "WL-A", "field": "importer_id", "entries": []}
    assert api.post("/v1/watchlists", role="analyst", json=wl).status_code == 201
    assert api.get("/v1/watchlists/WL-A").headers["etag"] == '"1"'
    changed = api.client.put("/v1/watchlists/WL-A", headers={**api.h("analyst"), "If-Match": '"1"'},
                             json={**wl, "description": "v2"})
    assert changed.status_code == 200 and changed.headers["etag"] == '"2"'
    stale = api.client.put("/v1/watchlists/WL-A", headers={**api.h("analyst"), "If-Match": '"1"'},
                           json={**wl, "description": "made on v1"})
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    assert api.get("/v1/watchlists/WL-A").json()["description"] == "v2"
    spec = api.get("/openapi.json").json()["paths"]["/v1/profiles/{profile_id}"]["put"]
    assert "412" in spec["responses"] and any(p["name"] == "if-match" for p in spec["parameters"])
    # the path gives the id (the name of a list): the body's schema listed it as required
    paths = api.get("/openapi.json").json()["paths"]
    one = paths["/v1/profiles/{profile_id}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert "id" not in one["required"] and "name" in one["required"]
    lst = paths["/v1/watchlists/{name}"]["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert "name" not in lst.get("required", [])
    assert api.client.put("/v1/profiles/P-TOOLS", headers=api.h("analyst"),
                          json={k: v for k, v in profile().items() if k != "id"}).status_code == 200


def test_a_change_stored_between_reading_and_saving_is_not_undone(api: Api) -> None:
    """The pages (and retire) read a version, build the change on it and save. A change stored in between
    was silently undone: the save numbered its version after the latest. The store now checks the base
    where it numbers the new version."""
    from profiles import Profile
    from serving.profile_store import StaleVersion

    store: ProfileStore = api.service.profiles
    actor = Actor("a", "analyst")
    store.save([profile()], [], actor)
    seen = store.profile("P-TOOLS")
    store.update_profile("P-TOOLS", {**profile(), "name": "meanwhile"}, actor)  # another writer
    with pytest.raises(StaleVersion, match="at version 2, not 1"):
        store.save([seen.model_copy(update={"status": "retired"})], [], actor, seen.version)
    with pytest.raises(StaleVersion):
        store.update_profile("P-TOOLS", {**profile(), "name": "made on v1"}, actor, base_version=1)
    assert [p.version for p in store.profile_history("P-TOOLS")] == [1, 2]
    assert store.profile("P-TOOLS").name == "meanwhile"
    assert isinstance(store.profile("P-TOOLS"), Profile)
    store.retire("P-TOOLS", actor)  # on the latest version: keeps the change made meanwhile
    latest = store.profile("P-TOOLS")
    assert (latest.version, latest.status, latest.name) == (3, "retired", "meanwhile")


def test_stats_of_a_profile_that_never_matched_have_every_documented_field(api: Api) -> None:
    """A profile with no recorded match answered without hit_rate, its interval and the model's figures
    (a client reading stats["hit_rate"] failed on exactly the profiles it wanted to retire); the answer
    is the documented ProfileStats with nulls, the same keys as a profile with matches."""
    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    doc = api.get("/openapi.json").json()
    schema = doc["paths"]["/v1/profiles/{profile_id}/stats"]["get"]["responses"]["200"]["content"]["application/json"]
    assert schema["schema"] == {"$ref": "#/components/schemas/ProfileStats"}
    documented = doc["components"]["schemas"]["ProfileStats"]
    empty = api.get("/v1/profiles/P-TOOLS/stats", role="officer").json()
    assert set(empty) == set(documented["properties"]) and set(documented["required"]) <= set(empty)
    assert (empty["matches"], empty["hit_rate"], empty["hit_rate_low"], empty["model_hit_rate"]) == (0, None, None, None)
    rank(api, [decl(1, hs="820600")], 1)
    api.audit()
    matched = api.get("/v1/profiles/P-TOOLS/stats", role="officer").json()
    assert matched["matches"] == 1 and set(matched) == set(empty)


def test_alert_and_change_log_times_carry_their_utc_offset(api: Api) -> None:
    """On SQLite the stored UTC times came back naive and were sent as '2026-12-03T18:37:07.137691' (no
    offset: a client reads local time), while /v1/model's loaded_at and PostgreSQL's answers carry
    '+00:00'; every time of the profile routes is now an ISO 8601 time with its offset."""
    import datetime as dt

    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    assert api.post("/v1/score", json=decl(1, hs="820600")).status_code == 200
    (alert,) = api.get("/v1/alerts", role="officer").json()["alerts"]
    acked = api.post(f"/v1/alerts/{alert['id']}/ack").json()
    (change,) = api.get("/v1/profiles/P-TOOLS", role="officer").json()["changes"]
    for text in (alert["created_at"], acked["created_at"], acked["acked_at"], change["created_at"]):
        assert dt.datetime.fromisoformat(text).utcoffset() == dt.timedelta(0), text


def test_the_412_body_documents_current_version(api: Api) -> None:
    """The 412 body's current_version (the version to read again) was only named in a description: the
    schema was ErrorBody (detail alone); it is PreconditionFailedBody, whose current_version is the latest
    version (null when If-Match named no version at all)."""
    doc = api.get("/openapi.json").json()
    for path in ("/v1/profiles/{profile_id}", "/v1/watchlists/{name}"):
        content = doc["paths"][path]["put"]["responses"]["412"]["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/PreconditionFailedBody"}, path
    body = doc["components"]["schemas"]["PreconditionFailedBody"]
    assert set(body["required"]) == {"detail", "current_version"}
    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    assert api.client.put("/v1/profiles/P-TOOLS", headers=api.h("analyst"), json=profile(name="v2")).status_code == 200
    stale = api.client.put("/v1/profiles/P-TOOLS", headers={**api.h("analyst"), "If-Match": '"1"'},
                           json=profile(name="v3"))
    assert stale.status_code == 412 and stale.json()["current_version"] == 2
    bad = api.client.put("/v1/profiles/P-TOOLS", headers={**api.h("analyst"), "If-Match": "abc"}, json=profile())
    assert bad.status_code == 412 and bad.json()["current_version"] is None


def test_profile_watch_list_and_alert_answers_match_their_documented_schemas(api: Api) -> None:
    """GET /v1/profiles, /v1/watchlists (and one of each), /v1/alerts and POST /v1/alerts/{id}/ack were documented as bare
    objects: a client built from the OpenAPI document could not learn their fields. Each real answer is now
    checked against the schema the document gives it."""
    import jsonschema

    assert api.post("/v1/profiles", role="analyst", json=profile()).status_code == 201
    assert api.post("/v1/watchlists", role="analyst", json={"name": "WL-S", "field": "importer_id", "entries": [
        {"value": "IMP000001", "reason": "tip", "added_by": "a"}]}).status_code == 201
    assert api.post("/v1/score", json=decl(1, hs="820600")).status_code == 200
    doc = api.get("/openapi.json").json()

    def check(path: str, method: str, answer: Any) -> None:
        schema = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        jsonschema.validate(answer, {**schema, "components": doc["components"]})

    listed = api.get("/v1/alerts", role="officer").json()
    assert listed["count"] == 1
    check("/v1/alerts", "get", listed)
    check("/v1/profiles", "get", api.get("/v1/profiles", role="officer").json())
    check("/v1/watchlists", "get", api.get("/v1/watchlists", role="officer").json())
    check("/v1/profiles/{profile_id}", "get", api.get("/v1/profiles/P-TOOLS", role="officer").json())
    check("/v1/watchlists/{name}", "get", api.get("/v1/watchlists/WL-S", role="officer").json())
    acked = api.post(f"/v1/alerts/{listed['alerts'][0]['id']}/ack", role="officer").json()
    assert acked["status"] == "acked"
    check("/v1/alerts/{alert_id}/ack", "post", acked)
    with pytest.raises(jsonschema.ValidationError):  # the check can fail: a field of the wrong type
        check("/v1/alerts/{alert_id}/ack", "post", {**acked, "version": "one"})
