"""The scoring API against the real app and a real SQLite store in tmp_path.

Most tests serve the tiny model of ``conftest`` (a real pipeline and LightGBM fitted in-process)
through the app's loader seam; the few marked slow/integration load a model trained and registered
in a real MLflow store.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from serving import ServingSettings, StartupError, Store, outcomes_frame
from serving.roles import Role
from tests.conftest import API_MAX_ITEMS as MAX_ITEMS
from tests.conftest import Api, TinyModel, TinyRegistry, running_api

DECL: dict[str, Any] = {
    "declaration_id": "T-0001", "declaration_date": "2023-06-01", "direction": "import", "office_type": "seaport",
    "importer_id": "IMP000123", "origin_country": "CN", "departure_country": "CN", "transit_countries": ["AE"],
    "destination_country": "YE", "conveyance": "vessel", "hs_code": "820600", "goods_description": "hardware, lamp",
    "quantity": 1234, "gross_weight_kg": 5400.0, "customs_value": 8200.0, "currency": "USD",
}
OUTCOME: dict[str, Any] = {
    "declaration_id": "T-0001", "inspected_date": "2023-06-02", "inspected": True, "selection_source": "model",
    "selection_probability": 1.0, "hit": True, "case_id": "C2023-000123", "revenue": 0.0,
}
@pytest.fixture(scope="module")
def api(tiny_model: TinyModel, seizures_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One app for the module: the tiny model from an in-memory registry, a SQLite store, a key per role."""
    with running_api(tmp_path_factory.mktemp("serving"), tiny_model.model, seizures=seizures_file) as running:
        yield running


def problems(resp: Any) -> list[dict[str, Any]]:
    body = resp.json()
    assert isinstance(body["detail"], list), body
    return body["detail"]


def decl(i: int, **kw: Any) -> dict[str, Any]:
    return {**DECL, "declaration_id": f"T-{i:04d}", **kw}


# ---- health, readiness, OpenAPI ----------------------------------------------------------------


def test_health_and_ready_need_no_key(api: Api) -> None:
    h = api.client.get("/health")
    assert h.status_code == 200
    assert h.json() == {"status": "ok"}  # liveness names no model to anyone without a key
    r = api.client.get("/ready")
    assert r.status_code == 200
    assert r.json()["ready"] and r.json()["model_loaded"] and r.json()["store_reachable"]
    assert r.json()["model"] == {"name": "tiny", "version": "1", "alias": "champion"}
    # load balancers probe with HEAD (it was a 405)
    assert [(x.status_code, x.content) for x in (api.client.head("/health"), api.client.head("/ready"))] == [
        (200, b""), (200, b"")]


def test_openapi_documents_bodies_and_examples(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    for path in ("/v1/score", "/v1/manifests/rank", "/v1/outcomes", "/v1/model", "/v1/model/reload",
                 "/v1/reports/trends", "/health", "/ready"):
        assert path in doc["paths"], path
    comps = doc["components"]["schemas"]
    for name in ("Declaration", "Outcome", "ScoreRequest", "OutcomesRequest", "RankRequest", "ScoreResponse",
                 "RankResponse", "ValidationErrorBody"):
        assert name in comps, name
    score = doc["paths"]["/v1/score"]["post"]
    body = score["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/ScoreRequest"}
    assert body["examples"]["example 1"]["value"]["hs_code"] == "820600"
    assert comps["ScoreResponse"]["examples"]
    assert {"401", "403", "422", "413"} <= set(score["responses"])
    assert doc["components"]["securitySchemes"]["APIKey"]["name"] == "X-API-Key"


@pytest.mark.parametrize(("path", "model"), [("/v1/score", "ScoreRequest"), ("/v1/outcomes", "OutcomesRequest"),
                                             ("/v1/manifests/rank", "RankRequest")])
def test_documented_request_body_is_the_model_that_validates(make_api: Callable[..., Api], path: str,
                                                            model: str) -> None:
    """The schema in /openapi.json is the request model's own, and its examples are answered 200."""
    from pydantic import TypeAdapter

    from serving import schemas

    api = make_api()  # the examples write outcomes: not into the module's store
    doc = api.client.get("/openapi.json").json()
    request_model = getattr(schemas, model)
    documented = doc["components"]["schemas"][model]
    own = request_model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, schema in own.pop("$defs", {}).items():
        assert doc["components"]["schemas"][name] == schema, name
    assert documented == own
    content = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]
    assert content["schema"] == {"$ref": f"#/components/schemas/{model}"}
    examples = [e["value"] for e in content["examples"].values()]
    assert examples and examples == documented["examples"]
    for example in examples:
        TypeAdapter(request_model).validate_python(example)
        resp = api.post(path, json=example)
        assert resp.status_code == 200, (example, resp.text)


@pytest.mark.parametrize("body", [[], {}, [{}], DECL, [DECL], [DECL, 5], [DECL, {**DECL, "hs_code": "1"}], "x", 3])
def test_score_schema_accepts_exactly_what_the_endpoint_accepts(api: Api, body: Any) -> None:
    from pydantic import ValidationError

    from serving.schemas import ScoreRequest

    try:
        ScoreRequest.model_validate(body)
        valid = True
    except ValidationError:
        valid = False
    resp = api.post("/v1/score", json=body)
    assert resp.status_code == (200 if valid else 422), resp.text


def test_documented_errors_are_the_json_bodies_answered(api: Api) -> None:
    """Every documented error is JSON, also on the HTML page (whose 401 was documented as text/html), and
    no operation documents FastAPI's own 422 body: every 422 is answered as ValidationErrorBody."""
    doc = api.client.get("/openapi.json").json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for code, resp in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert list(resp["content"]) == ["application/json"], (method, path, code)
            if "422" in op["responses"]:
                schema = op["responses"]["422"]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ValidationErrorBody"}, (method, path)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    page = api.client.get("/reports/trends")
    assert page.status_code == 401 and page.headers["content-type"] == "application/json"
    bad = api.get("/reports/trends?years=twenty")
    assert bad.status_code == 422 and problems(bad)[0]["field"] == "years"


@pytest.mark.parametrize("years", ["2022", "2022,2023", "2022-2023", " 2022 , 2023 ", "2023 - 2023", "",
                                   "twenty", "2022,,2023", "22", "２０２２", "2022;2023", "-2022", "2022-"])
def test_years_answered_as_the_documented_pattern_says(api: Api, years: str) -> None:
    import re

    doc = api.client.get("/openapi.json").json()
    (param,) = doc["paths"]["/v1/reports/trends"]["get"]["parameters"]
    documented = re.fullmatch(param["schema"]["pattern"], years, flags=re.ASCII) is not None
    resp = api.get("/v1/reports/trends", params={"years": years})
    assert resp.status_code == (200 if documented else 422), resp.text  # the data holds 2022 and 2023
    if not documented:
        assert problems(resp)[0]["field"] == "years"


@pytest.mark.parametrize(("path", "body"), [("/v1/score", []), ("/v1/outcomes", []),
                                            ("/v1/manifests/rank", {"declarations": [], "capacity": 1})])
def test_empty_lists_are_refused_as_documented(api: Api, path: str, body: Any) -> None:
    doc = api.client.get("/openapi.json").json()
    ref = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
    lists = [s for s in schema.get("anyOf", [schema.get("properties", {}).get("declarations", {})])
             if s.get("type") == "array"]
    assert lists and all(s["minItems"] == 1 for s in lists)
    resp = api.post(path, json=body)
    assert resp.status_code == 422 and "empty" in problems(resp)[0]["message"]


def test_docs_load_swagger_ui_from_the_service_itself(api: Api) -> None:
    """/docs renders without internet: every script, style and icon it names is served by the app."""
    import re

    from serving.app import SWAGGER_ASSETS

    page = api.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(urls) == 3 and all(u.startswith("/static/swagger/") for u in urls), urls
    assert "cdn" not in page.text.lower() and "http://" not in page.text and "https://" not in page.text
    assert '"validatorUrl": null' in page.text  # no call to validator.swagger.io either
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    for url in urls:
        asset = api.client.get(url)
        assert asset.status_code == 200, url
        assert kinds[Path(url).suffix] in asset.headers["content-type"], url
        assert asset.content == (SWAGGER_ASSETS / Path(url).name).read_bytes()
    assert "Apache License" in (SWAGGER_ASSETS / "LICENSE").read_text()
    assert api.client.get("/redoc").status_code == 404  # ReDoc's page would load from a CDN


def test_swagger_assets_are_package_data() -> None:
    """An installed wheel serves /docs too: pyproject's package-data covers every vendored file."""
    import fnmatch
    import tomllib

    from serving.app import SWAGGER_ASSETS
    from tests.conftest import REPO

    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data.get("serving", []) + data.get("*", [])
    files = [p.relative_to(REPO / "serving").as_posix() for p in SWAGGER_ASSETS.iterdir()]
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"} <= {Path(f).name for f in files}
    for f in files:
        assert any(fnmatch.fnmatch(f, pat) for pat in patterns), f


# ---- auth --------------------------------------------------------------------------------------

PROTECTED = [
    ("post", "/v1/score", "officer"),
    ("post", "/v1/manifests/rank", "officer"),
    ("post", "/v1/outcomes", "officer"),
    ("get", "/v1/model", "analyst"),
    ("post", "/v1/model/reload", "admin"),
    ("get", "/v1/reports/trends", "analyst"),
    ("get", "/reports/trends", "analyst"),
]


@pytest.mark.parametrize(("method", "path", "role"), PROTECTED)
def test_missing_or_invalid_key_is_401(api: Api, method: str, path: str, role: str) -> None:
    for headers in ({}, {"X-API-Key": "rpk_0000_nope"}, {"X-API-Key": "not-a-key"},
                    {"X-API-Key": api.keys[role][:-2] + "xx"}):
        resp = getattr(api.client, method)(path, headers=headers)
        assert resp.status_code == 401, (path, headers, resp.text)
        assert "detail" in resp.json()


@pytest.mark.parametrize(("method", "path", "role"), PROTECTED)
def test_insufficient_role_is_403(api: Api, method: str, path: str, role: str) -> None:
    below = [r for r in Role if not r.allows(Role(role))]
    for r in below:
        resp = getattr(api.client, method)(path, headers=api.h(r.value))
        assert resp.status_code == 403, (path, r, resp.text)
        assert role in resp.json()["detail"]


def test_higher_roles_may_do_what_lower_ones_can(api: Api) -> None:
    for role in ("analyst", "admin"):
        assert api.post("/v1/score", role, json=decl(1)).status_code == 200


def test_revoked_key_stops_working(api: Api) -> None:
    key = api.store.create_api_key("short-lived", "officer")
    assert api.client.post("/v1/score", headers={"X-API-Key": key}, json=decl(1)).status_code == 200
    assert api.store.revoke_key("short-lived")
    assert api.client.post("/v1/score", headers={"X-API-Key": key}, json=decl(1)).status_code == 401


def test_keys_are_stored_hashed(api: Api) -> None:
    with api.store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM api_keys")).mappings().all()
    stored = json.dumps([dict(r) for r in rows], default=str)
    for key in api.keys.values():
        assert key not in stored and key.split("_", 2)[2] not in stored  # the secret may hold "_"
    assert len({r["salt"] for r in rows}) == len(rows)


def test_prod_refuses_to_start_without_keys(make_api: Callable[..., Api]) -> None:
    with pytest.raises(StartupError, match="no API key"):
        make_api(env="prod", with_keys=False)


def test_prod_starts_once_a_key_exists(make_api: Callable[..., Api]) -> None:
    prod = make_api(env="prod")
    assert prod.get("/v1/model", role="admin").status_code == 200


# ---- scoring -----------------------------------------------------------------------------------


def _check_result(r: dict[str, Any]) -> None:
    assert 0.0 <= r["risk_score"] <= 1.0
    assert r["percentile"] is None or 0.0 <= r["percentile"] <= 100.0
    assert r["lane"] in ("red", "yellow", "green")
    assert 1 <= len(r["reasons"]) <= 5
    for reason in r["reasons"]:
        assert reason["text"] and reason["family"]
        assert isinstance(reason["contribution"], float)


def test_score_one_declaration(api: Api) -> None:
    resp = api.post("/v1/score", json=decl(1))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == {"name": "tiny", "version": "1", "alias": "champion"}
    assert body["count"] == 1
    (r,) = body["results"]
    assert r["declaration_id"] == "T-0001"
    _check_result(r)


def test_score_a_list_matches_the_model(api: Api, tiny_model: TinyModel) -> None:
    items = [decl(i, hs_code=hs, conveyance=conv) for i, (hs, conv) in
             enumerate([("820600", "vessel"), ("930200", "mail"), ("940360", "air"), ("610910", "express courier")])]
    resp = api.post("/v1/score", json=items)
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [r["declaration_id"] for r in results] == [d["declaration_id"] for d in items]
    for r in results:
        _check_result(r)
    expected = tiny_model.model.predict(items)
    np.testing.assert_allclose([r["risk_score"] for r in results], expected, rtol=0, atol=1e-12)


def test_unseen_values_are_scored_and_reported(api: Api) -> None:
    resp = api.post("/v1/score", json=[decl(1), decl(2, importer_id="NEVER-SEEN-TRADER-42",
                                                      departure_country="NZ", destination_country="IS")])
    assert resp.status_code == 200, resp.text
    known, new = resp.json()["results"]
    assert new["unseen_values"].get("importer_id") == "NEVER-SEEN-TRADER-42"
    assert "importer_id" not in known["unseen_values"] or known["unseen_values"]["importer_id"] == "IMP000123"
    _check_result(new)


def test_extra_columns_are_accepted(api: Api) -> None:
    assert api.post("/v1/score", json=decl(1, my_extra_code="Z9")).status_code == 200


def test_model_pin_in_query(api: Api) -> None:
    ok = api.post("/v1/score?model=tiny@champion", json=decl(1))
    assert ok.status_code == 200
    ok = api.post("/v1/score?model=tiny/1", json=decl(1))
    assert ok.status_code == 200
    bad = api.post("/v1/score?model=no-such-model", json=decl(1))
    assert bad.status_code == 404
    (p,) = problems(bad)
    assert p["field"] == "model" and p["value"] == "no-such-model"
    bad = api.post("/v1/score?model=tiny/999", json=decl(1))
    assert bad.status_code == 404


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("change", "field", "fragment"), [
    ({"hs_code": "12AB"}, "hs_code", "HS code"),
    ({"origin_country": "XX"}, "origin_country", "country"),
    ({"transit_countries": ["AE", "QQ"]}, "transit_countries", "country"),
    ({"gross_weight_kg": -5}, "gross_weight_kg", "greater than or equal to 0"),
    ({"customs_value": "lots"}, "customs_value", "number"),
    ({"declaration_date": "2023-02-30"}, "declaration_date", ""),
    ({"declaration_date": 20230601}, "declaration_date", ""),
    ({"declaration_date": True}, "declaration_date", "date"),
    ({"transit_countries": 7}, "transit_countries", ""),
    ({"declaration_id": ""}, "declaration_id", ""),
])
def test_bad_field_in_a_list_names_item_and_field(api: Api, change: dict, field: str, fragment: str) -> None:
    items = [decl(0), decl(1), decl(2), {**decl(3), **change}]
    resp = api.post("/v1/score", json=items)
    assert resp.status_code == 422, resp.text
    (p,) = problems(resp)
    assert p["item"] == 3 and p["field"] == field
    assert fragment in p["message"]
    assert p["value"] == change[field]


def test_bad_single_declaration_names_field_without_item(api: Api) -> None:
    resp = api.post("/v1/score", json={**decl(1), "hs_code": "1", "destination_country": "ZZ"})
    assert resp.status_code == 422
    got = {p["field"]: p for p in problems(resp)}
    assert set(got) == {"hs_code", "destination_country"}
    assert all("item" not in p for p in got.values())


def test_every_problem_of_every_item_is_listed(api: Api) -> None:
    items = [decl(0), {"declaration_id": "T-1"}, decl(2, hs_code="9"), 5]
    resp = api.post("/v1/score", json=items)
    assert resp.status_code == 422
    got = {(p["item"], p["field"]) for p in problems(resp)}
    assert got == {(1, "declaration_date"), (1, "hs_code"), (2, "hs_code"), (3, "declaration")}
    missing = [p for p in problems(resp) if p["item"] == 1]
    assert all(p["message"] == "field required" for p in missing)


@pytest.mark.parametrize("body", [b"{", b"", b"[1, 2", b"{'a': 1}", b"[NaN]", b"\xff\xfe"])
def test_malformed_json_is_400(api: Api, body: bytes) -> None:
    resp = api.post("/v1/score", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    (p,) = problems(resp)
    assert p["field"] == "body"


@pytest.mark.parametrize("body", [b'"a string"', b"12", b"null", b"[]", b"true"])
def test_wrong_top_level_type_is_422(api: Api, body: bytes) -> None:
    resp = api.post("/v1/score", content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 422, resp.text
    assert problems(resp)[0]["field"] == "body"


def test_too_many_items_is_413(api: Api) -> None:
    resp = api.post("/v1/score", json=[decl(i) for i in range(MAX_ITEMS + 1)])
    assert resp.status_code == 413
    (p,) = problems(resp)
    assert str(MAX_ITEMS) in p["message"]
    assert api.post("/v1/score", json=[decl(i) for i in range(MAX_ITEMS)]).status_code == 200


def test_request_too_large_is_413(api: Api) -> None:
    big = [decl(i, goods_description="x" * 4000) for i in range(20)]
    resp = api.post("/v1/score", json=big)
    assert resp.status_code == 413
    assert "limit" in problems(resp)[0]["message"]


def test_streamed_body_over_the_limit_is_413(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"["
        for i in range(40):
            yield (json.dumps(decl(i, goods_description="y" * 3000)) + ",").encode()
        yield json.dumps(decl(99)).encode() + b"]"

    resp = api.post("/v1/score", content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413


@pytest.mark.parametrize("path", ["/v1/score", "/v1/outcomes", "/v1/profiles"])
def test_a_compressed_body_is_415_naming_content_encoding(api: Api, path: str) -> None:
    """A gzip body (Content-Encoding: gzip, as many HTTP clients send a large manifest) was read as JSON
    and answered 400 'malformed JSON: expected value at line 1 column 1', sending the client to look for a
    fault in its JSON; it is a documented 415 naming the header. identity is still accepted."""
    import gzip

    raw = json.dumps(decl(1)).encode()
    resp = api.post(path, role="analyst", content=gzip.compress(raw),
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert resp.status_code == 415, resp.text
    (p,) = problems(resp)
    assert p["field"] == "Content-Encoding" and "gzip" in p["message"]
    doc = api.client.get("/openapi.json").json()
    method = "post"
    assert doc["paths"][path][method]["responses"]["415"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ValidationErrorBody"}
    plain = api.post("/v1/score", content=raw, headers={"Content-Type": "application/json",
                                                         "Content-Encoding": "identity"})
    assert plain.status_code == 200, plain.text


def test_unexpected_errors_give_json_without_trace(api: Api) -> None:
    from serving.routes import get_service

    class Broken:
        def score(self, *a: Any, **k: Any) -> Any:
            raise RuntimeError("secret internals /etc/passwd")

    api.client.app.dependency_overrides[get_service] = lambda: Broken()
    try:
        resp = api.post("/v1/score", json=decl(1))
    finally:
        api.client.app.dependency_overrides.clear()
    assert resp.status_code == 500
    assert resp.json() == {"detail": "internal error (logged on the server)"}
    assert "Traceback" not in resp.text and "passwd" not in resp.text


def test_unknown_route_is_json_404(api: Api) -> None:
    resp = api.get("/v1/nothing-here")
    assert resp.status_code == 404 and resp.json()["detail"]


# ---- manifests ---------------------------------------------------------------------------------


def manifest(n: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(3)
    hs = ["820600", "930200", "940360", "610910", "847130", "851712"]
    conv = ["vessel", "mail", "air", "express courier", "vehicle"]
    ctry = ["CN", "AE", "TR", "DE", "US", "AL", "GB"]
    return [decl(i, hs_code=str(rng.choice(hs)), conveyance=str(rng.choice(conv)),
                 departure_country=str(rng.choice(ctry)), importer_id=f"IMP{int(rng.integers(0, 400)):06d}",
                 customs_value=float(rng.lognormal(8, 1)), gross_weight_kg=float(rng.lognormal(5, 1)))
            for i in range(n)]


def test_rank_manifest_with_capacity_and_random_share(api: Api) -> None:
    items = manifest(40)
    resp = api.post("/v1/manifests/rank", json={"declarations": items, "capacity": "25%", "random_share": 0.2,
                                                "seed": 7, "reasons": "all"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["count"] == 40 and body["capacity"] == 10
    assert body["selected_model"] == 8 and body["selected_random"] == 2
    ranked = body["items"]
    assert [r["rank"] for r in ranked] == list(range(1, 41))
    scores = [r["risk_score"] for r in ranked]
    assert scores == sorted(scores, reverse=True)
    assert all(r["selection"] == "model" and r["selection_probability"] == 1.0 for r in ranked[:8])
    rest = ranked[8:]
    assert sum(r["selection"] == "random" for r in rest) == 2
    assert all(r["selection_probability"] == pytest.approx(2 / 32) for r in rest)
    assert all(r["selection"] in ("random", "none") for r in rest)
    assert all(r["reasons"] for r in ranked)
    assert {r["declaration_id"] for r in ranked} == {d["declaration_id"] for d in items}
    # same manifest and seed → same draw
    again = api.post("/v1/manifests/rank", json={"declarations": items, "capacity": "25%", "random_share": 0.2,
                                                 "seed": 7, "reasons": "all"}).json()
    assert [r["selection"] for r in again["items"]] == [r["selection"] for r in ranked]


def test_rank_count_capacity_and_flagged_reasons(api: Api) -> None:
    resp = api.post("/v1/manifests/rank", json={"declarations": manifest(12), "capacity": 3})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["capacity"] == 3 and body["selected_random"] == 0
    assert body["lanes"] == {"by": "score", "red": 0.3, "yellow": 0.1}
    for r in body["items"]:
        assert (r["reasons"] is None) == (r["lane"] == "green")


@pytest.mark.parametrize(("payload", "fields"), [
    ({"capacity": "lots"}, {"capacity"}),
    ({"capacity": "150%"}, {"capacity"}),
    ({"capacity": -3}, {"capacity"}),
    ({"capacity": 2, "random_share": 1.5}, {"random_share"}),
    ({"capacity": 2, "reasons": "some"}, {"reasons"}),
    ({"capacity": 2, "surprise": 1}, {"surprise"}),
    ({}, {"capacity"}),
])
def test_rank_bad_parameters(api: Api, payload: dict, fields: set[str]) -> None:
    resp = api.post("/v1/manifests/rank", json={"declarations": manifest(3), **payload})
    assert resp.status_code == 422, resp.text
    assert {p["field"] for p in problems(resp)} == fields


@pytest.mark.parametrize(("payload", "field"), [
    ({"capacity": None}, "capacity"), ({"capacity": [5]}, "capacity"), ({"capacity": {"n": 5}}, "capacity"),
    ({"capacity": True}, "capacity"), ({"capacity": 2, "random_share": True}, "random_share"),
    ({"capacity": 2, "seed": False}, "seed"),
])
def test_rank_parameter_of_the_wrong_type_is_one_problem_naming_the_parameter(api: Api, payload: dict,
                                                                              field: str) -> None:
    """capacity: null was answered with two problems, one for the field 'capacity.float' (pydantic's union
    branch, not a field of the request); true was read as a capacity of 1 (and as a random share of 1,
    a seed of 0) where every number of a declaration refuses a boolean."""
    resp = api.post("/v1/manifests/rank", json={"declarations": manifest(3), **payload})
    assert resp.status_code == 422, resp.text
    assert [p["field"] for p in problems(resp)] == [field]


def test_rank_bad_declaration_names_item(api: Api) -> None:
    items = manifest(5)
    items[2]["departure_country"] = "XX"
    resp = api.post("/v1/manifests/rank", json={"declarations": items, "capacity": 1})
    assert resp.status_code == 422
    (p,) = problems(resp)
    assert p == {"item": 2, "field": "declarations.departure_country", "value": "XX",
                 "message": "'XX' is not an ISO 3166 alpha-2 country code"}
    resp = api.post("/v1/manifests/rank", json={"capacity": 1})
    assert {p["field"] for p in problems(resp)} == {"declarations"}
    resp = api.post("/v1/manifests/rank", json={"declarations": decl(1), "capacity": 1})
    assert {p["field"] for p in problems(resp)} == {"declarations"}
    resp = api.post("/v1/manifests/rank", json={"declarations": manifest(MAX_ITEMS + 1), "capacity": 1})
    assert resp.status_code == 413


# ---- audit -------------------------------------------------------------------------------------


def test_scoring_calls_are_audited(api: Api) -> None:
    before = len(api.audit())
    t0 = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=1)
    items = [decl(501), decl(502, hs_code="930200")]
    body = api.post("/v1/score", json=items).json()
    rank = api.post("/v1/manifests/rank", json={"declarations": manifest(4), "capacity": 1}, role="analyst").json()
    audit = api.audit()
    new = audit.iloc[before:]
    assert len(new) == 2 + 4
    score_rows = new[new["endpoint"] == "score"]
    assert list(score_rows["declaration_id"]) == ["T-0501", "T-0502"]
    assert set(score_rows["key_name"]) == {"test-officer"} and set(score_rows["role"]) == {"officer"}
    assert set(new["model_version"]) == {"1"} and set(new["model_name"]) == {"tiny"}
    for (_, row), res in zip(score_rows.iterrows(), body["results"], strict=True):
        assert row["risk_score"] == pytest.approx(res["risk_score"], abs=1e-12)
        assert row["lane"] == res["lane"]
        assert row["reasons"] == res["reasons"]
    created = pd.to_datetime(new["created_at"]).dt.tz_localize(None)
    assert (created >= t0).all()
    rank_rows = new[new["endpoint"] == "rank"]
    assert set(rank_rows["key_name"]) == {"test-analyst"}
    by_id = {r["declaration_id"]: r for r in rank["items"]}
    for _, row in rank_rows.iterrows():
        assert row["selection"] == by_id[row["declaration_id"]]["selection"]
        assert row["lane"] == by_id[row["declaration_id"]]["lane"]


def test_rejected_requests_are_not_audited(api: Api) -> None:
    before = len(api.audit())
    api.post("/v1/score", json=[decl(1), decl(2, hs_code="x")])
    api.client.post("/v1/score", json=decl(1))
    assert len(api.audit()) == before


def test_sync_audit_and_flush_at_shutdown(tiny_model: TinyModel, tmp_path: Path) -> None:
    for mode in ("sync", "background"):
        (tmp_path / mode).mkdir()
        with running_api(tmp_path / mode, tiny_model.model, audit_mode=mode) as app:
            for i in range(5):
                assert app.post("/v1/score", json=decl(i)).status_code == 200
            if mode == "sync":  # written before the answer
                assert len(app.store.audit_frame()) == 5
        # background: whatever was pending is written when the app shuts down
        store = Store.from_url(f"sqlite:///{tmp_path / mode / 'serving.db'}")
        assert list(store.audit_frame()["declaration_id"]) == [f"T-{i:04d}" for i in range(5)]
        store.dispose()


def test_audit_log_is_append_only(api: Api) -> None:
    api.post("/v1/score", json=decl(1))
    api.audit()
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), api.store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_items SET lane = 'green'"))
    with pytest.raises(sa.exc.DatabaseError, match="append-only"), api.store.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events"))


# ---- outcomes ----------------------------------------------------------------------------------


def test_outcomes_are_idempotent(api: Api) -> None:
    first = api.post("/v1/outcomes", json=OUTCOME)
    assert first.status_code == 200, first.text
    counts = {k: first.json()[k] for k in ("created", "unchanged", "items")}  # + unknown_declaration_ids
    assert counts == {"created": 1, "unchanged": 0, "items": [{"declaration_id": "T-0001", "status": "created"}]}
    again = api.post("/v1/outcomes", json=OUTCOME)
    assert again.json()["unchanged"] == 1 and again.json()["created"] == 0
    batch = [OUTCOME, {**OUTCOME, "declaration_id": "T-0002", "hit": False, "case_id": None, "revenue": None},
             {**OUTCOME, "declaration_id": "T-0002", "hit": False, "case_id": None, "revenue": None}]
    resp = api.post("/v1/outcomes", json=batch).json()
    assert [i["status"] for i in resp["items"]] == ["unchanged", "created", "unchanged"]
    frame = outcomes_frame(api.store.engine)
    assert list(frame["declaration_id"]) == ["T-0001", "T-0002"]


def test_conflicting_outcome_is_409_and_writes_nothing(api: Api) -> None:
    api.post("/v1/outcomes", json={**OUTCOME, "declaration_id": "T-0100"})
    resp = api.post("/v1/outcomes", json=[{**OUTCOME, "declaration_id": "T-0101"},
                                          {**OUTCOME, "declaration_id": "T-0100", "hit": False}])
    assert resp.status_code == 409
    (p,) = problems(resp)
    assert p["item"] == 1 and p["field"] == "declaration_id" and "hit" in p["message"]
    ids = set(outcomes_frame(api.store.engine)["declaration_id"])
    assert "T-0101" not in ids


def test_outcomes_frame_follows_the_outcome_contract(api: Api, tmp_path: Path) -> None:
    from features.contracts import OUTCOME as OUTCOME_CONTRACT
    from features.contracts import validate_table

    api.post("/v1/outcomes", json={**OUTCOME, "declaration_id": "T-0200", "selection_source": "random",
                                   "selection_probability": 0.05, "revenue": 120.5})
    frame = outcomes_frame(api.store)
    assert list(frame.columns) == OUTCOME_CONTRACT.columns
    pd.testing.assert_frame_equal(frame, validate_table(frame, OUTCOME_CONTRACT))
    row = frame.set_index("declaration_id").loc["T-0200"]
    assert row["inspected_date"] == pd.Timestamp("2023-06-02")
    assert row["selection_source"] == "random" and row["selection_probability"] == 0.05
    assert bool(row["hit"]) and row["revenue"] == 120.5
    # a store that never received an outcome gives an empty table with the same columns
    empty = outcomes_frame(f"sqlite:///{tmp_path / 'none.db'}")
    assert list(empty.columns) == OUTCOME_CONTRACT.columns and len(empty) == 0


def test_outcomes_frame_reads_the_configured_store(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from serving.settings import get_serving_settings

    api.post("/v1/outcomes", json={**OUTCOME, "declaration_id": "T-0400"})
    monkeypatch.setenv("RISKPROF_DATABASE_URL", str(api.store.engine.url))
    get_serving_settings.cache_clear()
    try:
        assert "T-0400" in set(outcomes_frame()["declaration_id"])
    finally:
        monkeypatch.delenv("RISKPROF_DATABASE_URL")
        get_serving_settings.cache_clear()


@pytest.mark.parametrize(("change", "field"), [
    ({"hit": "maybe"}, "hit"),
    ({"selection_source": "astrology"}, "selection_source"),
    ({"selection_probability": -0.1}, "selection_probability"),
    ({"inspected_date": "yesterday"}, "inspected_date"),
    ({"unknown_field": 1}, "unknown_field"),
])
def test_bad_outcomes(api: Api, change: dict, field: str) -> None:
    resp = api.post("/v1/outcomes", json=[OUTCOME, {**OUTCOME, "declaration_id": "T-0300", **change}])
    assert resp.status_code == 422, resp.text
    (p,) = problems(resp)
    assert p["item"] == 1 and p["field"] == field


# ---- model info and reload ---------------------------------------------------------------------


def test_model_info(api: Api, tiny_model: TinyModel) -> None:
    resp = api.get("/v1/model")
    assert resp.status_code == 200, resp.text
    info = resp.json()
    assert info["name"] == "tiny" and info["version"] == "1" and info["alias"] == "champion"
    assert info["run_id"] == "tiny-run-1" and info["uri"] == "models:/tiny/1"
    assert info["training_period"] == tiny_model.model.metadata["training_period"]
    assert info["metrics"]["auc"] == tiny_model.model.metadata["metrics"]["auc"]
    assert info["lanes"] == {"by": "score", "red": 0.3, "yellow": 0.1}
    assert info["features"] == tiny_model.model.feature_names


def _broken_copies(model: Any) -> dict[str, Any]:
    """A version whose artifact does not load, one that scores outside [0, 1], and a good copy."""
    from scoring import Calibrator

    bad = copy.copy(model)
    bad.calibrator = Calibrator(np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    return {"corrupt": OSError("not a joblib file"), "bad_scores": bad, "good": copy.copy(model)}


def test_reload_rejects_broken_versions_and_keeps_the_running_one(make_api: Callable[..., Api],
                                                                   tiny_model: TinyModel) -> None:
    app = make_api()
    reg = app.registry
    assert reg is not None
    versions = {kind: reg.add(m) for kind, m in _broken_copies(tiny_model.model).items()}
    same = app.post("/v1/model/reload", role="admin")
    assert same.status_code == 200 and same.json()["changed"] is False
    for kind, stage in (("corrupt", "load"), ("bad_scores", "smoke")):
        reg.aliases["champion"] = versions[kind]
        resp = app.post("/v1/model/reload", role="admin")
        assert resp.status_code == 409, resp.text
        body = resp.json()
        assert body["stage"] == stage and body["rejected_version"] == versions[kind]
        assert body["loaded_version"] == "1"
        assert "Traceback" not in resp.text
        assert app.get("/v1/model").json()["version"] == "1"
        ok = app.post("/v1/score", json=decl(1))
        assert ok.status_code == 200 and ok.json()["model"]["version"] == "1"
    reg.aliases["champion"] = versions["good"]
    resp = app.post("/v1/model/reload", role="admin")
    assert resp.status_code == 200, resp.text
    assert resp.json()["changed"] is True
    assert resp.json()["previous"]["version"] == "1"
    assert resp.json()["model"]["version"] == versions["good"]
    assert app.post("/v1/score", json=decl(1)).json()["model"]["version"] == versions["good"]


def test_polling_follows_the_alias(make_api: Callable[..., Api], tiny_model: TinyModel) -> None:
    import time

    app = make_api(model_poll_seconds=0.1)
    reg = app.registry
    assert reg is not None
    versions = {kind: reg.add(m) for kind, m in _broken_copies(tiny_model.model).items()}

    def served() -> str:
        return app.get("/v1/model").json()["version"]

    assert served() == "1"
    reg.aliases["champion"] = versions["corrupt"]  # rejected: the running one stays
    time.sleep(0.5)
    assert served() == "1"
    reg.aliases["champion"] = versions["good"]
    deadline = time.monotonic() + 30
    while served() != versions["good"]:
        assert time.monotonic() < deadline, "the poller did not load the new champion"
        time.sleep(0.1)


@pytest.mark.slow  # waits on the poller
def test_polling_tries_a_version_that_failed_to_load_again_and_says_the_alias_is_ahead(
        make_api: Callable[..., Api], tiny_model: TinyModel) -> None:
    """The alias moved to a version whose files were not all there yet: the poller gave it up for good
    after one try, and /ready and /v1/model went on naming the old version as the champion."""
    import time

    app = make_api(model_poll_seconds=0.05)
    reg = app.registry
    assert reg is not None
    late = reg.add(OSError("artifact not there yet"))
    reg.aliases["champion"] = late
    deadline = time.monotonic() + 30
    while (ready := app.client.get("/ready").json())["alias_behind"] is None:
        assert time.monotonic() < deadline, "the failed load was not reported"
        time.sleep(0.05)
    assert ready["ready"] is True and ready["model"]["version"] == "1"  # the running model still serves
    assert ready["alias_behind"] == {"alias": "champion", "version": late, "serving": "1",
                                     "problem": f"version {late} failed to load: OSError: artifact not there yet"}
    assert app.get("/v1/model").json()["alias_behind"]["version"] == late
    reg.versions[late] = copy.copy(tiny_model.model)  # the files arrive
    while app.get("/v1/model").json()["version"] != late:
        assert time.monotonic() < deadline, "the poller never tried the version again"
        time.sleep(0.05)
    assert app.client.get("/ready").json()["alias_behind"] is None
    assert "alias_behind" not in app.get("/v1/model").json()


@pytest.mark.parametrize("how", ["removed", "replaced"])
def test_a_store_file_removed_or_replaced_while_serving_is_503_not_a_lost_audit(
        make_api: Callable[..., Api], how: str) -> None:
    """rm models/serving.db while serving: each call answered 200, its audit rows went into the removed
    file (lost) and /ready said ready; once a command made a new file, every call was 'disk I/O error'."""
    app = make_api()
    assert app.post("/v1/score", json=decl(1)).status_code == 200
    db = Path(app.store.engine.url.database)
    moved = db.with_name("moved-away.db")
    db.rename(moved)
    if how == "replaced":
        import sqlite3

        sqlite3.connect(db).close()  # e.g. `riskprof keys list` creating the file again
    resp = app.post("/v1/score", json=decl(2))
    assert resp.status_code == 503 and f"the serving store file {db} was removed or replaced" in resp.text
    ready = app.client.get("/ready")
    assert ready.status_code == 503 and ready.json()["store_reachable"] is False
    assert app.post("/v1/outcomes", json={"declaration_id": "T-0001", "inspected_date": "2023-06-02",
                                          "inspected": True, "hit": False}).status_code == 503


def test_ready_is_503_when_the_store_file_cannot_be_written(make_api: Callable[..., Api]) -> None:
    """chattr +i on the store: every write answered 503 'disk I/O error' while /ready said ready."""
    import subprocess

    app = make_api()
    db = Path(app.store.engine.url.database)
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        pytest.skip("this file system has no immutable flag (chattr)")
    try:
        ready = app.client.get("/ready")
        assert ready.status_code == 503 and ready.json()["store_reachable"] is False
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    assert app.client.get("/ready").status_code == 200


def test_reload_of_unknown_model_is_404(make_api: Callable[..., Api], tiny_model: TinyModel) -> None:
    app = make_api(model_name="no-such-model", registry=TinyRegistry("tiny", tiny_model.model))
    assert app.client.get("/health").json() == {"status": "ok"}
    ready = app.client.get("/ready")
    assert ready.status_code == 503 and ready.json()["model_loaded"] is False
    resp = app.post("/v1/model/reload", role="admin")
    assert resp.status_code == 404 and "no-such-model" in resp.json()["detail"]
    resp = app.post("/v1/score", role="admin", json=decl(1))
    assert resp.status_code == 503 and resp.json()["detail"]


def test_lanes_by_capacity(make_api: Callable[..., Api], tiny_model: TinyModel) -> None:
    """Thresholds at the shares of recent traffic: scoring that traffic puts 1 % in red, 5 % in red or yellow."""
    traffic = tiny_model.traffic
    assert len(traffic) == 1000 and len(np.unique(tiny_model.model.reference_scores)) == 1000  # no ties
    app = make_api(lanes_by="capacity", lane_red_share=0.01, lane_yellow_share=0.05, max_items=len(traffic),
                   max_body_bytes=4 * 1024 * 1024)
    lanes = app.get("/v1/model").json()["lanes"]
    assert lanes["by"] == "capacity" and 1.0 >= lanes["red"] > lanes["yellow"] > 0.0
    resp = app.post("/v1/score", json=traffic)
    assert resp.status_code == 200, resp.text
    counts = pd.Series([r["lane"] for r in resp.json()["results"]]).value_counts()
    assert counts["red"] == 10 and counts["red"] + counts["yellow"] == 50
    assert counts["green"] == 950


# ---- MLflow: the registry the service loads from by default --------------------------------------


@pytest.fixture(scope="module")
def champion(trained_model):
    """The model trained and registered in the session's MLflow store, also under ``champion``."""
    import mlflow

    mlflow.MlflowClient().set_registered_model_alias(trained_model.name, "champion", trained_model.version)
    return trained_model


def _log_version(name: str, risk_model: Any | None, corrupt: bool = False) -> str:
    """Register a new version of ``name`` holding ``risk_model`` (or a corrupt artifact)."""
    import mlflow

    from scoring.registry import ARTIFACT_FILE, ARTIFACT_KEY, _pyfunc_class, write_artifact

    mlflow.set_experiment("riskprof")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ARTIFACT_FILE
        if corrupt:
            path.write_bytes(b"this is not a model artifact")
        else:
            write_artifact(risk_model, path)
        with mlflow.start_run(run_name="serving-test-version"):
            info = mlflow.pyfunc.log_model(name="model", python_model=_pyfunc_class()(),
                                           artifacts={ARTIFACT_KEY: str(path)}, pip_requirements=["riskprof"])
    return str(mlflow.register_model(info.model_uri, name).version)


def _set_champion(name: str, version: str) -> None:
    import mlflow

    mlflow.MlflowClient().set_registered_model_alias(name, "champion", version)


@pytest.mark.slow
@pytest.mark.integration
def test_mlflow_champion_is_served_and_a_corrupt_version_is_rejected(make_api: Callable[..., Api], champion) -> None:
    from scoring.registry import load_risk_model

    app = make_api(registry=None, model_name=champion.name)
    info = app.get("/v1/model").json()
    assert info["version"] == champion.version and info["run_id"] == champion.run_id
    assert 0.5 < info["metrics"]["auc"] <= 1.0
    resp = app.post("/v1/score", json=decl(1))
    assert resp.status_code == 200 and resp.json()["model"]["version"] == champion.version
    good = load_risk_model(f"models:/{champion.name}/{champion.version}").model
    corrupt, copy_version = _log_version(champion.name, None, corrupt=True), _log_version(champion.name, good)
    try:
        _set_champion(champion.name, corrupt)
        resp = app.post("/v1/model/reload", role="admin")
        assert resp.status_code == 409, resp.text
        assert resp.json()["stage"] == "load" and resp.json()["loaded_version"] == champion.version
        _set_champion(champion.name, copy_version)
        resp = app.post("/v1/model/reload", role="admin")
        assert resp.status_code == 200 and resp.json()["model"]["version"] == copy_version
        assert app.post("/v1/score", json=decl(1)).json()["model"]["version"] == copy_version
    finally:
        _set_champion(champion.name, champion.version)


def test_lane_settings_are_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="red"):
        ServingSettings(lane_red=0.1, lane_yellow=0.2)
    with pytest.raises(ValidationError, match="red"):
        ServingSettings(lanes_by="capacity", lane_red_share=0.2, lane_yellow_share=0.1)


# ---- trend reports -----------------------------------------------------------------------------


def test_trends_json(api: Api) -> None:
    import reports

    resp = api.get("/v1/reports/trends?years=2022,2023")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["years"] == [2022, 2023]
    assert set(body["tables"]) == set(reports.TABLE_NAMES)
    totals = body["tables"]["totals"]
    assert [r["year"] for r in totals] == [2022, 2023]
    assert all(r["cases"] > 0 and r["seizures"] >= r["cases"] for r in totals)
    only = api.get("/v1/reports/trends?years=2023").json()
    assert [r["year"] for r in only["tables"]["totals"]] == [2023]


def test_trends_bad_years_and_missing_source(api: Api, make_api: Callable[..., Api], tmp_path: Path) -> None:
    resp = api.get("/v1/reports/trends?years=twenty")
    assert resp.status_code == 422
    assert problems(resp)[0]["field"] == "years"
    resp = api.get("/v1/reports/trends?years=1500")
    assert resp.status_code == 422 and problems(resp)[0]["field"] == "years"
    resp = make_api(seizures=tmp_path / "missing.parquet").get("/v1/reports/trends")
    assert resp.status_code == 503 and "missing.parquet" in resp.json()["detail"]
    garbage = tmp_path / "seizures.parquet"
    garbage.write_bytes(b"garbage\n")  # a copy cut short, another file: it was a 500
    resp = make_api(seizures=garbage).get("/v1/reports/trends")
    assert resp.status_code == 503 and "cannot be read" in resp.json()["detail"], resp.text


def test_trends_html(api: Api) -> None:
    resp = api.get("/reports/trends?years=2022,2023")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "<html" in resp.text.lower() and "</html>" in resp.text.lower()


# ---- CLI ---------------------------------------------------------------------------------------


def test_cli_keys_create_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from riskprof.cli import app
    from serving.settings import get_serving_settings

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("RISKPROF_DATABASE_URL", url)
    get_serving_settings.cache_clear()
    try:
        runner = CliRunner()
        made = runner.invoke(app, ["keys", "create", "--role", "analyst", "--name", "desk-7"])
        assert made.exit_code == 0, made.output
        key = made.stdout.strip().splitlines()[-1]
        assert key.startswith("rpk_")
        store = Store.from_url(url)
        principal = store.verify_api_key(key)
        assert principal is not None and principal.name == "desk-7" and principal.role == Role.analyst
        assert runner.invoke(app, ["keys", "create", "--role", "boss", "--name", "x"]).exit_code == 2
        assert runner.invoke(app, ["keys", "create", "--role", "admin", "--name", "desk-7"]).exit_code == 2
        listed = runner.invoke(app, ["keys", "list"])
        assert "desk-7\tanalyst" in listed.stdout and key not in listed.stdout
        assert runner.invoke(app, ["keys", "revoke", "--name", "desk-7"]).exit_code == 0
        assert store.verify_api_key(key) is None
        store.dispose()
    finally:
        get_serving_settings.cache_clear()


def test_a_negative_seed_and_a_declaration_id_twice_are_422s(api: Api) -> None:
    """seed -1 was a 500 whenever a random draw happened (numpy refuses negative seeds); the same id twice
    was ranked twice (once selected, once not) and audited twice, where a file with it is refused."""
    items = manifest(6)
    r = api.post("/v1/manifests/rank", json={"declarations": items, "capacity": 2, "random_share": 0.5, "seed": -1})
    assert r.status_code == 422, r.text
    assert [(p["field"], p["message"]) for p in r.json()["detail"]] == [
        ("seed", "Input should be greater than or equal to 0")]
    twice = [*items[:3], items[1], items[2]]
    for path, body in (("/v1/score", twice), ("/v1/manifests/rank", {"declarations": twice, "capacity": 1})):
        before = api.audit()
        r = api.post(path, json=body)
        assert r.status_code == 422, r.text
        problems = [(p["item"], p["field"], p["message"]) for p in r.json()["detail"]]
        field = "declaration_id" if path == "/v1/score" else "declarations.declaration_id"
        assert problems == [(3, field, "expected a unique key (the same as item 1)"),
                            (4, field, "expected a unique key (the same as item 2)")]
        assert len(api.audit()) == len(before)  # nothing scored, nothing recorded
