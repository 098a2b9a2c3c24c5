"""Bad input an integrator's walk found after the first fixes: each refused with a 4xx naming it, or read
as the standard allows, never a 500 or a silent default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.errors import MalformedBody
from serving.parsing import parse_json
from tests.conftest import Api, TinyModel, running_api
from tests.test_api_input_edges import DECL


@pytest.fixture(scope="module")
def api(tiny_model: TinyModel, seizures_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with running_api(tmp_path_factory.mktemp("followups"), tiny_model.model, seizures=seizures_file) as running:
        yield running


def test_an_empty_model_pin_is_422_not_ignored(api: Api) -> None:
    # ?model= pinned nothing and the call was scored by whatever is served: a client's empty setting went unnoticed
    resp = api.post("/v1/score?model=", json=DECL)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["field"] == "model"
    assert "empty model name" in resp.json()["detail"][0]["message"]
    assert api.post("/v1/score?model=%20", json=DECL).status_code == 422
    assert api.post("/v1/score", json=DECL).status_code == 200


def test_a_profile_version_past_the_store_integer_is_422(api: Api) -> None:
    # an import (PUT) keeps the versions it is given: 2**31 was a 500 on PostgreSQL's integer column
    profile = {"id": "P-BIG", "name": "tools", "criterion": "hand tools", "version": 2**31,
               "conditions": [{"field": "hs_code", "op": "prefix", "values": ["8206"]}],
               "action": {"lane": "red"}, "valid_from": "2023-01-01", "status": "active", "owner": "a"}
    resp = api.client.put("/v1/profiles", headers=api.h("analyst"), json=[profile])
    assert resp.status_code == 422, resp.text
    assert any(p["field"] == "version" for p in resp.json()["detail"])
    assert api.get("/v1/profiles/P-BIG").status_code == 404
    watch = {"name": "big", "field": "importer_id", "version": 2**63,
             "entries": [{"value": "IMP1", "reason": "seen before", "added_by": "a"}]}
    resp = api.client.put("/v1/watchlists", headers=api.h("analyst"), json=[watch])
    assert resp.status_code == 422, resp.text
    assert [p["field"] for p in resp.json()["detail"]] == ["version"], resp.text


def test_a_body_with_a_utf8_byte_order_mark_is_read() -> None:
    # RFC 8259 §8.1: a parser may ignore a BOM; PowerShell 5's Invoke-RestMethod sends one
    assert parse_json(b"\xef\xbb\xbf" + json.dumps(DECL).encode()) == DECL
    with pytest.raises(MalformedBody) as err:
        parse_json(b"\xef\xbb\xbf\xef\xbb\xbf{}")  # one mark is ignored, not any number of them
    assert "after its byte order mark" in err.value.problems[0].message


def test_a_utf16_body_is_told_to_be_sent_as_utf8() -> None:
    with pytest.raises(MalformedBody) as err:
        parse_json(json.dumps(DECL).encode("utf-16"))
    assert "UTF-16" in err.value.problems[0].message


def test_score_with_a_bom_over_http(api: Api) -> None:
    resp = api.post("/v1/score", content=b"\xef\xbb\xbf" + json.dumps(DECL).encode(),
                    headers={"Content-Type": "application/json"})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    assert body["results"][0]["declaration_id"] == DECL["declaration_id"]


def test_a_misspelt_field_is_422_naming_the_field_it_most_likely_means(api: Api) -> None:
    # customs_valeu was dropped as an unknown field and the declaration scored without its value, without a word
    wrong = {k: v for k, v in DECL.items() if k != "customs_value"} | {"customs_valeu": 8200.0}
    resp = api.post("/v1/score", json=[DECL | {"declaration_id": "M-1"}, wrong | {"declaration_id": "M-2"}])
    assert resp.status_code == 422, resp.text
    [problem] = resp.json()["detail"]
    assert problem["item"] == 1 and problem["field"] == "customs_valeu"
    assert "did you mean 'customs_value'" in problem["message"]
    # a field given under its own name as well, or far from every column's name, is no misspelling
    assert api.post("/v1/score", json=DECL | {"customs_valeu": 1.0}).status_code == 200
    assert api.post("/v1/score", json=DECL | {"broker_reference": "B-77"}).status_code == 200
