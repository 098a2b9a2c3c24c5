"""GET /v1/monitoring: the figures of ``riskprof monitor`` from the serving store, for analysts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api
from tests.test_serving import manifest


def _record(api: Api, ranked: list[dict[str, Any]], hits: set[str]) -> None:
    selected = [r for r in ranked if r["selection"] in ("model", "random")]
    body = [{"declaration_id": r["declaration_id"], "inspected_date": "2023-06-02", "inspected": True,
             "selection_source": r["selection"], "selection_probability": r["selection_probability"],
             "hit": r["declaration_id"] in hits} for r in selected]
    resp = api.post("/v1/outcomes", json=body)
    assert resp.status_code == 200, resp.text


def test_monitoring_counts_recorded_selections_and_outcomes(make_api: Callable[..., Api]) -> None:
    from serving.monitoring import monitoring_from_store

    api = make_api()
    resp = api.post("/v1/manifests/rank", json={"declarations": manifest(40), "capacity": "25%",
                                                "random_share": 0.2, "seed": 7})
    assert resp.status_code == 200, resp.text
    ranked = resp.json()["items"]
    model = [r["declaration_id"] for r in ranked if r["selection"] == "model"]
    random = [r["declaration_id"] for r in ranked if r["selection"] == "random"]
    assert (len(model), len(random)) == (8, 2)
    # by hand: 3 of the 8 model selections hit, 1 of the 2 random ones
    _record(api, ranked, set(model[:3]) | {random[0]})

    got = api.get("/v1/monitoring")
    assert got.status_code == 200, got.text
    body = got.json()
    overall = body["overall"]
    assert overall["inspections"] == 10 and overall["hits"] == 4
    assert overall["by_source"]["model"]["rate"] == pytest.approx(3 / 8)
    assert overall["by_source"]["random"]["rate"] == pytest.approx(1 / 2)
    assert overall["lanes"]["scored"] == 40
    assert len(body["weeks"]) == 1
    # the API answers exactly what the shared function computes (and riskprof monitor writes)
    assert body == monitoring_from_store(api.store)
    # and what its OpenAPI document says it answers (it was documented as a bare object); an empty period too
    import jsonschema

    doc = api.get("/openapi.json").json()
    schema = {**doc["paths"]["/v1/monitoring"]["get"]["responses"]["200"]["content"]["application/json"]["schema"],
              "components": doc["components"]}
    jsonschema.validate(body, schema)
    jsonschema.validate(api.get("/v1/monitoring?since=2030-01-01").json(), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**body, "weeks": [{"week": "2023-06-05"}]}, schema)


def test_monitoring_is_for_analysts_and_checks_since(make_api: Callable[..., Api]) -> None:
    api = make_api()
    assert api.get("/v1/monitoring", role="officer").status_code == 403
    assert api.client.get("/v1/monitoring").status_code == 401
    for bad in ("yesterday", "2024-02-30", "2024-1-1"):
        resp = api.get("/v1/monitoring", params={"since": bad})
        assert resp.status_code == 422, (bad, resp.text)
        assert resp.json()["detail"][0]["field"] == "since"
    empty = api.get("/v1/monitoring", params={"since": "2024-03-01"})
    assert empty.status_code == 200 and empty.json()["overall"]["inspections"] == 0
