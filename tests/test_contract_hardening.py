"""Hostile input against the contracts: every bad value is a 422 naming its field (API) or a row error
(files, ``riskprof validate``), never a 500, never scored or stored."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.contracts import (
    DECLARATION,
    NO_NUL_EXPECTED,
    OUTCOME,
    SEIZURE,
    Contract,
    FieldSpec,
    normalize_table,
)
from features.mapping import MappingError, mapping_from_dict
from features.yamlfile import load_yaml
from riskprof.cli import app
from serving import outcomes_frame
from tests.conftest import Api, TinyModel, TinyRegistry, running_api

runner = CliRunner()

DECL: dict[str, Any] = {
    "declaration_id": "H-0001", "declaration_date": "2023-06-01", "direction": "import", "office_id": "YE-ADE",
    "office_type": "seaport", "importer_id": "IMP000123", "declarant_id": "DCL0042", "origin_country": "CN",
    "departure_country": "CN", "transit_countries": ["AE"], "destination_country": "YE", "conveyance": "vessel",
    "hs_code": "820600", "goods_description": "hardware, lamp", "quantity": 1234, "gross_weight_kg": 5400.0,
    "customs_value": 8200.0, "currency": "USD",
}
OUTCOME_ITEM: dict[str, Any] = {
    "declaration_id": "H-0001", "inspected_date": "2023-06-02", "inspected": True, "selection_source": "model",
    "selection_probability": 1.0, "hit": True, "case_id": "C2023-000123", "revenue": 0.0,
}
SEIZURE_ROW: dict[str, Any] = {
    "case_id": "C1", "seizure_id": "S1", "event_date": "2023-04-10", "reporting_country": "AL",
    "direction": "export", "departure_country": "AL", "destination_country": "GB", "conveyance": "mail",
    "detection_method": "x-ray / scanner", "detection_location": "land border", "commodity_category": "small arms",
    "weapon_type": "revolver", "quantity": 2, "declared_hs_code": "9403", "declared_description": "table",
    "concealment": "inside furniture",
}
ROWS = {"declaration": DECL, "outcome": OUTCOME_ITEM, "seizure": SEIZURE_ROW}
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def api(tiny_model: TinyModel, seizures_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with running_api(tmp_path_factory.mktemp("hardening"), tiny_model.model, seizures=seizures_file) as running:
        yield running


def post_raw(api: Api, path: str, body: str) -> httpx.Response:
    return api.post(path, content=body.encode(), headers={"content-type": "application/json"})


def fields_of(resp: httpx.Response) -> list[str]:
    body = json.loads(resp.text)  # strict: an error body must itself be valid JSON (no Infinity)
    assert isinstance(body["detail"], list), body
    return [p["field"] for p in body["detail"]]


def text_fields(contract: Contract) -> list[FieldSpec]:
    return [f for f in contract.fields if f.max_chars is not None]


def file_problems(contract: Contract, column: str, value: Any) -> list[tuple[int | None, str, str]]:
    row = {**ROWS[contract.name]}
    if contract is OUTCOME:
        row["selection_probability"] = 1.0
    frame = pd.DataFrame([row, {**row, contract.key: "second"}]).astype(object)
    frame.loc[1, column] = value
    _, report = normalize_table(frame, contract, "f.csv")
    return [(p.row, p.column, p.expected) for p in report.problems]


# ---- 1. every text field has a length limit ---------------------------------------------------------


def test_a_30_million_character_id_is_refused_and_never_stored(make_api: Callable[..., Api]) -> None:
    api = make_api(max_body_bytes=64 * MiB)
    huge = "x" * 30_000_000
    resp = api.post("/v1/score", json={**DECL, "declaration_id": huge})
    assert resp.status_code == 422 and fields_of(resp) == ["declaration_id"]
    assert len(resp.text) < 1_000  # the error quotes the value, it does not echo 30 MB back
    resp = api.post("/v1/outcomes", json={**OUTCOME_ITEM, "case_id": huge})
    assert resp.status_code == 422 and fields_of(resp) == ["case_id"]
    assert api.audit().empty and outcomes_frame(api.store.engine).empty


@pytest.mark.parametrize("spec", text_fields(DECLARATION), ids=lambda s: s.name)
def test_each_declaration_text_field_has_a_limit_in_the_api(api: Api, spec: FieldSpec) -> None:
    assert spec.max_chars is not None
    value: Any = "A" * (spec.max_chars + 1)
    if spec.kind == "countries":
        value = ["AE"] * 51  # a list is bounded by its number of countries
    resp = api.post("/v1/score", json={**DECL, spec.name: value})
    assert resp.status_code == 422, resp.text
    assert fields_of(resp) == [spec.name]


@pytest.mark.parametrize("name", ["declaration_id", "case_id"])
def test_each_outcome_text_field_has_a_limit_in_the_api(api: Api, name: str) -> None:
    resp = api.post("/v1/outcomes", json={**OUTCOME_ITEM, name: "C" * 201})
    assert resp.status_code == 422 and fields_of(resp) == [name]
    assert "at most 200 characters" in resp.json()["detail"][0]["message"]


def test_a_text_value_at_its_limit_is_accepted(api: Api) -> None:
    long_id = "D" * 200
    resp = api.post("/v1/score", json={**DECL, "declaration_id": long_id, "goods_description": "g" * 1000})
    assert resp.status_code == 200, resp.text
    assert resp.json()["results"][0]["declaration_id"] == long_id


@pytest.mark.parametrize(("contract", "spec"), [(c, f) for c in (DECLARATION, OUTCOME, SEIZURE) for f in
                                                text_fields(c) if f.kind in ("id", "str", "category", "countries")],
                         ids=lambda x: x.name)
def test_each_text_field_has_a_limit_in_files(contract: Contract, spec: FieldSpec) -> None:
    assert spec.max_chars is not None
    found = file_problems(contract, spec.name, "A" * (spec.max_chars + 1))
    assert (2, spec.name, f"at most {spec.max_chars} characters") in found, found


# ---- 1b. no text holds a NUL character: never real text, and PostgreSQL's text columns refuse it ------

NUL_TEXT = "AB\x00C"


@pytest.mark.parametrize(("contract", "spec"), [(c, f) for c in (DECLARATION, OUTCOME, SEIZURE) for f in c.fields
                                                if f.kind in ("id", "str")], ids=lambda x: x.name)
def test_a_nul_character_is_a_row_error_in_files(contract: Contract, spec: FieldSpec) -> None:
    assert (2, spec.name, NO_NUL_EXPECTED) in file_problems(contract, spec.name, NUL_TEXT)


@pytest.mark.parametrize(("path", "item", "name"), [("/v1/score", DECL, f.name) for f in DECLARATION.fields
                                                     if f.kind in ("id", "str")]
                         + [("/v1/outcomes", OUTCOME_ITEM, "declaration_id"), ("/v1/outcomes", OUTCOME_ITEM, "case_id")])
def test_a_nul_character_is_422_naming_the_field_in_the_api(api: Api, path: str, item: dict[str, Any],
                                                           name: str) -> None:
    resp = api.post(path, json={**item, name: NUL_TEXT})
    assert resp.status_code == 422, resp.text
    detail = json.loads(resp.text)["detail"]
    assert [(p["field"], p["message"], p["value"]) for p in detail] == [(name, f"expected {NO_NUL_EXPECTED}", NUL_TEXT)]


@pytest.mark.slow
@pytest.mark.integration
def test_a_nul_character_in_an_id_is_422_on_postgresql_and_nothing_is_stored(
        tiny_model: TinyModel, tmp_path: Path, pg_url: str) -> None:
    """On PostgreSQL the audit insert of such an id failed: a 500 (the file and API checks above stop it)."""
    from serving import migrations
    from serving.store import make_engine

    engine = make_engine(pg_url)
    migrations.upgrade(engine)
    engine.dispose()
    with running_api(tmp_path, tiny_model.model, database_url=pg_url) as pg_api:
        assert pg_api.post("/v1/score", json={**DECL, "declaration_id": NUL_TEXT}).status_code == 422
        assert pg_api.post("/v1/outcomes", json={**OUTCOME_ITEM, "declaration_id": NUL_TEXT}).status_code == 422
        assert pg_api.post("/v1/score", json=DECL).status_code == 200  # the store itself works
        assert len(pg_api.audit()) == 1 and outcomes_frame(pg_api.store.engine).empty


def test_a_file_report_quotes_a_huge_value_without_copying_it() -> None:
    frame = pd.DataFrame([{**DECL, "transit_countries": "AE", "declaration_id": "y" * 1_000_000}])
    _, report = normalize_table(frame, DECLARATION, "big.csv")
    assert [(p.row, p.column) for p in report.problems] == [(1, "declaration_id")]
    assert len(str(report.problems[0])) < 300 and "1,000,000 characters" in str(report.problems[0])


# ---- 2. non-finite numbers ------------------------------------------------------------------------------

RANK_HEAD = '{"declarations":[{"declaration_id":"x","declaration_date":"2023-06-01","hs_code":"820600"}],'
OVERFLOWS = [
    ("/v1/score", '{"declaration_id":"x","declaration_date":"2023-06-01","hs_code":"820600","quantity":-1e400}',
     "quantity"),
    ("/v1/score", '{"declaration_id":"x","declaration_date":"2023-06-01","hs_code":"820600",'
                  '"gross_weight_kg":1e400}', "gross_weight_kg"),
    ("/v1/score", '{"declaration_id":1e400,"declaration_date":"2023-06-01","hs_code":"820600"}', "declaration_id"),
    ("/v1/score", '{"declaration_id":"x","declaration_date":"2023-06-01","hs_code":1e400}', "hs_code"),
    ("/v1/score", '{"declaration_id":"x","declaration_date":1e400,"hs_code":"820600"}', "declaration_date"),
    ("/v1/score", '[{"declaration_id":"x","declaration_date":"2023-06-01","hs_code":"820600","office_type":-1e400}]',
     "office_type"),
    ("/v1/manifests/rank", RANK_HEAD + '"capacity":1e400}', "capacity"),
    ("/v1/manifests/rank", RANK_HEAD + '"capacity":"inf"}', "capacity"),
    ("/v1/manifests/rank", RANK_HEAD + '"capacity":1,"random_share":1e400}', "random_share"),
    ("/v1/manifests/rank", RANK_HEAD + '"capacity":1,"seed":1e400}', "seed"),
    ("/v1/outcomes", json.dumps(OUTCOME_ITEM).replace('"revenue": 0.0', '"revenue": 1e400'), "revenue"),
    ("/v1/outcomes", json.dumps(OUTCOME_ITEM).replace('"selection_probability": 1.0',
                                                      '"selection_probability": 1e400'), "selection_probability"),
]


@pytest.mark.parametrize(("path", "body", "field"), OVERFLOWS)
def test_non_finite_numbers_are_422_naming_the_field(api: Api, path: str, body: str, field: str) -> None:
    resp = post_raw(api, path, body)
    assert resp.status_code == 422, resp.text
    assert field in fields_of(resp)[-1]


@pytest.mark.parametrize("value", ["inf", "-inf", "1e400", "Infinity"])
def test_non_finite_numbers_are_row_errors_in_files(value: str) -> None:
    assert file_problems(DECLARATION, "customs_value", value) == [(2, "customs_value", "a finite number")]
    assert file_problems(OUTCOME, "revenue", value) == [(2, "revenue", "a finite number")]


@pytest.mark.slow
@pytest.mark.integration
def test_keep_alive_connection_survives_a_refused_overflow(tiny_model: TinyModel, tmp_path: Path) -> None:
    """A real uvicorn server: after each 422 the next request on the same connection is answered."""
    from serving import ServingSettings, Store, create_app
    from tests.api_process import app_in_thread

    registry = TinyRegistry("tiny", tiny_model.model)
    settings = ServingSettings(model_name="tiny", database_url=f"sqlite:///{tmp_path / 'serving.db'}",
                               seizures_path=tmp_path / "none.parquet")
    store = Store.from_url(settings.resolved_database_url)
    key = store.create_api_key("keepalive", "officer")
    app = create_app(settings, loader=registry.load, resolver=registry.resolve)
    try:
        with app_in_thread(app, "uvicorn-keepalive") as url:
            headers = {"X-API-Key": key, "content-type": "application/json"}
            client_ports = set()
            with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
                for path, body, field in OVERFLOWS:
                    bad = http.post(path, content=body)
                    assert bad.status_code == 422 and field in fields_of(bad)[-1], bad.text
                    good = http.post("/v1/score", json=DECL)
                    assert good.status_code == 200, good.text
                    for resp in (bad, good):
                        client_ports.add(resp.extensions["network_stream"].get_extra_info("client_addr")[1])
        assert len(client_ports) == 1  # one keep-alive connection served every request
    finally:
        store.dispose()


@pytest.mark.parametrize(("value", "fragment"), [
    ("t" * 1001, "at most 1000 characters"), ([1, 2], "got a list"), ({"a": 1}, "got an object"),
    (10**30, "within ±2^63"),
])
def test_extra_fields_are_bounded_like_contract_fields(api: Api, value: Any, fragment: str) -> None:
    resp = api.post("/v1/score", json=[DECL, {**DECL, "declaration_id": "H-2", "tax_rate": value}])
    assert resp.status_code == 422, resp.text
    (problem,) = resp.json()["detail"]
    assert (problem["item"], problem["field"]) == (1, "tax_rate") and fragment in problem["message"]
    assert post_raw(api, "/v1/score", json.dumps(DECL)[:-1] + ', "tax_rate": 1e400}').status_code == 422


def test_extra_fields_of_plain_values_are_still_scored(api: Api) -> None:
    body = {**DECL, "tax_rate": 0.05, "seller": "S" * 1000, "flag": True, "note": None, "count": 3}
    assert api.post("/v1/score", json=body).status_code == 200
    too_many = {**DECL, **{f"x{i}": i for i in range(101)}}
    resp = api.post("/v1/score", json=too_many)
    assert resp.status_code == 422 and "at most 100 extra fields" in resp.text


# ---- 3. HS codes in ASCII digits only -------------------------------------------------------------------

UNICODE_DIGITS = ["８２０６００", "²²²²²²", "٨٢٠٦٠٠", "８２０６.００"]


@pytest.mark.parametrize("code", UNICODE_DIGITS)
def test_hs_codes_in_other_digits_are_refused_by_the_api(api: Api, code: str) -> None:
    resp = api.post("/v1/score", json={**DECL, "hs_code": code})
    assert resp.status_code == 422 and fields_of(resp) == ["hs_code"]
    resp = api.post("/v1/manifests/rank", json={"declarations": [DECL, {**DECL, "declaration_id": "H-2",
                                                                         "hs_code": code}], "capacity": 1})
    assert resp.status_code == 422 and fields_of(resp) == ["declarations.hs_code"]
    assert resp.json()["detail"][0]["item"] == 1


@pytest.mark.parametrize("code", UNICODE_DIGITS)
def test_hs_codes_in_other_digits_are_row_errors_in_files(code: str) -> None:
    assert file_problems(DECLARATION, "hs_code", code) == [(2, "hs_code", "an HS code of 6 to 10 digits")]


def test_validate_cli_names_the_row_of_a_full_width_hs_code(tmp_path: Path) -> None:
    path = tmp_path / "decl.csv"
    pd.DataFrame([{**DECL, "transit_countries": "AE"}, {**DECL, "declaration_id": "H-2", "transit_countries": "AE",
                                                        "hs_code": "８２０６００"}]).to_csv(path, index=False)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    assert "row 2, column 'hs_code'" in result.output and "1 problems" in result.output


# ---- 4. impossible outcomes -----------------------------------------------------------------------------

IMPOSSIBLE = [
    ({"selection_probability": 1.5}, "selection_probability", "less than or equal to 1"),
    ({"selection_source": "random", "selection_probability": 0}, "selection_probability", "above 0"),
    ({"inspected": False, "hit": True}, "hit", "a hit needs an inspection"),
    ({"selection_probability": -0.1}, "selection_probability", "greater than or equal to 0"),
]


@pytest.mark.parametrize(("change", "field", "fragment"), IMPOSSIBLE)
def test_impossible_outcomes_are_422_and_not_stored(api: Api, change: dict, field: str, fragment: str) -> None:
    before = len(outcomes_frame(api.store.engine))
    item = {**OUTCOME_ITEM, "declaration_id": "IMPOSSIBLE-1", **change}
    for body, where in ((item, None), ([OUTCOME_ITEM, item], 1)):
        resp = api.post("/v1/outcomes", json=body)
        assert resp.status_code == 422, resp.text
        (problem,) = resp.json()["detail"]
        assert (problem["field"], problem.get("item")) == (field, where) and fragment in problem["message"]
    assert len(outcomes_frame(api.store.engine)) == before


def test_possible_outcomes_next_to_the_rules_are_accepted(api: Api) -> None:
    ok = [{**OUTCOME_ITEM, "declaration_id": "EDGE-1", "selection_source": "random", "selection_probability": 0.01},
          {**OUTCOME_ITEM, "declaration_id": "EDGE-2", "inspected": False, "hit": False, "selection_probability": 0},
          {**OUTCOME_ITEM, "declaration_id": "EDGE-3", "selection_source": None, "selection_probability": None}]
    resp = api.post("/v1/outcomes", json=ok)
    assert resp.status_code == 200 and resp.json()["created"] == 3, resp.text


def test_an_outcome_for_a_declaration_never_scored_is_accepted_and_flagged(api: Api) -> None:
    assert api.post("/v1/score", json={**DECL, "declaration_id": "SEEN-1"}).status_code == 200
    body = [{**OUTCOME_ITEM, "declaration_id": "SEEN-1"}, {**OUTCOME_ITEM, "declaration_id": "NEVER-1"},
            {**OUTCOME_ITEM, "declaration_id": "NEVER-1"}]
    resp = api.post("/v1/outcomes", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["unknown_declaration_ids"] == ["NEVER-1"]
    assert [i["status"] for i in resp.json()["items"]] == ["created", "created", "unchanged"]
    stored = set(outcomes_frame(api.store.engine)["declaration_id"])
    assert {"SEEN-1", "NEVER-1"} <= stored
    again = api.post("/v1/outcomes", json=body[0]).json()
    assert again["unknown_declaration_ids"] == [] and again["unchanged"] == 1


@pytest.mark.parametrize(("column", "value", "fragment"), [
    ("selection_probability", 1.5, "≤ 1"),
    ("selection_probability", "inf", "finite"),
    ("revenue", "1e400", "finite"),
])
def test_impossible_outcome_values_are_row_errors_in_files(column: str, value: Any, fragment: str) -> None:
    ((row, col, expected),) = file_problems(OUTCOME, column, value)
    assert (row, col) == (2, column) and fragment in expected


def test_the_outcome_file_contract_applies_the_cross_field_rules(tmp_path: Path) -> None:
    rows = [OUTCOME_ITEM,
            {**OUTCOME_ITEM, "declaration_id": "O-2", "inspected": False, "hit": True},
            {**OUTCOME_ITEM, "declaration_id": "O-3", "selection_source": "random", "selection_probability": 0},
            {**OUTCOME_ITEM, "declaration_id": "O-4", "inspected": False, "hit": False}]
    path = tmp_path / "outcomes.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    _, report = normalize_table(pd.read_csv(path), OUTCOME, "outcomes.csv")
    assert [(p.row, p.column) for p in report.problems] == [(2, "hit"), (3, "selection_probability")]
    result = runner.invoke(app, ["validate", "--contract", "outcome", str(path)])
    assert result.exit_code == 1, result.output
    assert "row 2, column 'hit'" in result.output and "row 3, column 'selection_probability'" in result.output


# ---- 5. JSON types as the OpenAPI schema says -----------------------------------------------------------

WRONG_TYPES = [(name, value) for name in ("direction", "office_type", "conveyance")
               for value in (["import"], {"a": "import"}, 5, 1.5, True)] + [
    ("customs_value", False), ("customs_value", "12"), ("quantity", True), ("gross_weight_kg", "5400"),
    ("hs_code", 820600), ("origin_country", ["CN"]), ("departure_country", 1), ("transit_countries", [1]),
    ("transit_countries", {"AE": 1}), ("declaration_date", 20230601), ("importer_id", 123), ("currency", False),
]


@pytest.mark.parametrize(("name", "value"), WRONG_TYPES, ids=[f"{n}={v!r}" for n, v in WRONG_TYPES])
def test_values_of_the_wrong_json_type_are_422(api: Api, name: str, value: Any) -> None:
    resp = api.post("/v1/score", json={**DECL, name: value})
    assert resp.status_code == 422, resp.text
    assert fields_of(resp) == [name]


def test_the_openapi_schema_states_the_types_and_limits_enforced(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    for contract, model in ((DECLARATION, "Declaration"), (OUTCOME, "Outcome")):
        props = schemas[model]["properties"]
        for spec in contract.fields:
            branches = [b for b in props[spec.name].get("anyOf", [props[spec.name]]) if b.get("type") != "null"]
            types = {b["type"] for b in branches}
            if spec.max_chars is not None and spec.kind != "countries":
                assert types == {"string"} and branches[0]["maxLength"] == spec.max_chars, (spec.name, branches)
            if spec.kind == "float":
                assert types == {"number"}, (spec.name, branches)
            if spec.kind == "bool":
                assert types == {"boolean"}, (spec.name, branches)


def test_the_openapi_schema_lists_the_values_of_a_closed_vocabulary(api: Api) -> None:
    """selection_source is refused unless it is model, random, rule or officer, but the schema showed a
    free string (a client generated from it sent 'manual' and got a 422); a closed vocabulary is now an
    enum, an open one (declarations' conveyance: unseen values are scored) stays a string."""
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    for contract, model in ((DECLARATION, "Declaration"), (OUTCOME, "Outcome")):
        props = schemas[model]["properties"]
        for spec in contract.fields:
            if spec.kind != "category":
                continue
            (branch,) = [b for b in props[spec.name].get("anyOf", [props[spec.name]]) if b.get("type") != "null"]
            if spec.strict:
                assert branch.get("enum") == list(spec.vocab), (spec.name, branch)
            else:
                assert "enum" not in branch, (spec.name, branch)
    assert api.post("/v1/outcomes", json={**OUTCOME_ITEM, "selection_source": "manual"}).status_code == 422
    assert api.post("/v1/outcomes", json={**OUTCOME_ITEM, "selection_source": "officer"}).status_code == 200


@pytest.mark.parametrize(("name", "value"), [("inspected", "true"), ("hit", 1), ("selection_probability", "1"),
                                             ("revenue", False), ("selection_source", ["model"])])
def test_outcome_fields_of_the_wrong_json_type_are_422(api: Api, name: str, value: Any) -> None:
    resp = api.post("/v1/outcomes", json={**OUTCOME_ITEM, name: value})
    assert resp.status_code == 422 and fields_of(resp) == [name], resp.text


# ---- mappings that do not parse end in a message, not a traceback ----------------------------------------


def test_a_label_rule_written_as_an_unquoted_yes_matches_yes_in_any_case() -> None:
    """'equals: yes' (YAML reads it as True) on a column of yes/no compared the text 'True' and matched no
    row; a column written by pandas ('True'/'False') or as 1/0 matched, and still does."""
    from features.mapping import LabelRule

    yes = LabelRule("fraud", "Flag", equals=True)
    assert yes.apply(pd.Series(["yes", "No", "YES ", "True", None, "y"])).tolist() == [
        True, False, True, True, False, False]
    assert yes.apply(pd.Series(["1", "0"])).tolist() == [True, False]
    no = LabelRule("fraud", "Flag", isin=("X", False))
    assert no.apply(pd.Series(["no", "X", "off", "yes", "x"])).tolist() == [True, True, True, False, False]


@pytest.mark.parametrize(("extra", "named"), [
    ({"values": {"conveyance": ["vessel", "air"]}}, "values.conveyance"),
    ({"values": {"conveyance": {"10": ["vessel", "air"]}}}, "values.conveyance"),
    ({"values": ["conveyance"]}, "'values'"),
    ({"formats": {"hs_code": {"zero_pad": "six"}}}, "formats.hs_code.zero_pad"),
    ({"formats": {"hs_code": {"zero_pad": 0}}}, "formats.hs_code.zero_pad"),
    ({"formats": {"hs_code": {"zero_pad": True}}}, "formats.hs_code.zero_pad"),
    ({"formats": {"hs_code": {"pad": 6}}}, "formats.hs_code"),
    ({"formats": {"hs_code": 6}}, "formats.hs_code"),
    ({"columns": ["declaration_id"]}, "'columns'"),
    ({"extra_columns": "Tax Rate"}, "'extra_columns'"),
    # a value map or format for a column the mapping does not map was ignored without a word (a typo in
    # the name, or a column left out of columns:), and the codes went through unmapped or unpadded
    ({"values": {"convayance": {"10": "vessel"}}}, "values.convayance"),
    ({"values": {"office_id": {"10": "X"}}}, "values.office_id"),
    ({"formats": {"hs": {"zero_pad": 6}}}, "formats.hs"),
    # a label rule with a typo ('equal') loaded, and only reading data said "give one of equals, in, at_least"
    # (no file, no key named); two rules kept the first without a word; 'in: YES' matched Y, E and S
    ({"labels": {"fraud": {"column": "Flag", "equal": 1}}}, "labels.fraud"),
    ({"labels": {"fraud": {"column": "Flag"}}}, "labels.fraud"),
    ({"labels": {"fraud": {"column": "Flag", "equals": "Y", "in": ["J"]}}}, "labels.fraud"),
    ({"labels": {"fraud": {"column": "Flag", "in": "YES"}}}, "labels.fraud.in"),
    ({"labels": {"fraud": {"column": "Flag", "at_least": "high"}}}, "labels.fraud.at_least"),
    ({"labels": {"fraud": {"column": "Flag", "equals": [1, 2]}}}, "labels.fraud.equals"),
    ({"labels": {"fraud": "Flag"}}, "labels.fraud"),
    # a list constant and a list contract ended in tracebacks; a constant for a column also mapped from the
    # file replaced the file's values without a word; an empty source name looked for a column 'None'
    ({"constants": {"direction": ["import"]}}, "constants.direction"),
    ({"contract": ["declaration"]}, "'contract'"),
    ({"constants": {"hs_code": "010121"}}, "constants.hs_code"),
    ({"columns": {"declaration_id": "ID", "declaration_date": "Date", "hs_code": "HS", "office_id": None}},
     "columns.office_id"),
    # YAML reads an unquoted NO (Norway), no, yes, off… as a boolean: 'False' was written in every row
    ({"constants": {"destination_country": False}}, "constants.destination_country"),
    ({"values": {"conveyance": {"10": True}}}, "values.conveyance"),
])
def test_malformed_mapping_is_a_clear_error_and_exit_2(tmp_path: Path, extra: dict, named: str) -> None:
    doc = {"contract": "declaration", "columns": {"declaration_id": "ID", "declaration_date": "Date",
                                                  "hs_code": "HS", "conveyance": "Mode"}, **extra}
    with pytest.raises(MappingError, match=named.replace(".", r"\.")):
        mapping_from_dict(doc, source="m.yaml")
    data = tmp_path / "decl.csv"
    pd.DataFrame({"ID": ["D1"], "Date": ["2023-06-01"], "HS": ["820600"], "Mode": ["10"]}).to_csv(data, index=False)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(json.dumps(doc))  # JSON is YAML
    result = runner.invoke(app, ["validate", str(data), "--mapping", str(mapping)])
    assert result.exit_code == 2, result.output
    assert named in result.output and "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)


def test_yaml_booleans_where_codes_were_meant_are_named_with_the_quotes_to_add() -> None:
    """Unquoted NO (Norway), no, yes, on, off are YAML booleans: {NO: null} mapped the text 'False', which no
    row holds, and a constant NO wrote False in every row. A boolean contract column still takes one."""
    for text, named in [("constants: {destination_country: NO}", "constants.destination_country"),
                        ("values: {origin_country: {NO: null}}", "values.origin_country")]:
        doc = load_yaml("columns: {declaration_id: ID, origin_country: Orig}\n" + text)
        with pytest.raises(MappingError, match=rf"{named}.*YAML boolean.*quote") as exc:
            mapping_from_dict(doc, source="m.yaml")
        assert "'NO'" in str(exc.value)
    outcome = mapping_from_dict(load_yaml("contract: outcome\ncolumns: {declaration_id: ID}\n"
                                          "constants: {inspected: yes}"))
    assert outcome.constants == {"inspected": True}


def test_a_well_formed_mapping_still_maps_and_pads() -> None:
    m = mapping_from_dict({"columns": {"declaration_id": "ID", "hs_code": "HS", "conveyance": "Mode"},
                           "values": {"conveyance": {"10": "vessel"}}, "formats": {"hs_code": {"zero_pad": 6}}})
    out = m.apply(pd.DataFrame({"ID": ["D1"], "HS": [10121], "Mode": [10]}))
    assert out.loc[0, "hs_code"] == "010121" and out.loc[0, "conveyance"] == "vessel"


def test_dates_with_different_time_zone_offsets_keep_their_local_day_and_junk_is_named() -> None:
    """pandas refuses a column mixing offsets ("Mixed timezones detected"); a file like that used to
    end in a traceback. Each value keeps its own local wall time; a value that is no date is a problem."""
    dates = ["2023-06-01T10:00:00+02:00", "2023-06-01", "2023-06-02T23:00:00-05:00", "junk"]
    for dtype in (object, "string[pyarrow]"):
        frame = pd.DataFrame([{**DECL, "declaration_id": f"H-{i}", "declaration_date": d}
                              for i, d in enumerate(dates)]).astype({"declaration_date": dtype})
        out, report = normalize_table(frame, DECLARATION)
        assert out["declaration_date"].tolist()[:3] == [pd.Timestamp("2023-06-01 10:00"), pd.Timestamp("2023-06-01"),
                                                       pd.Timestamp("2023-06-02 23:00")]
        assert [(p.row, p.column, p.value) for p in report.problems] == [(4, "declaration_date", "junk")]


def test_dates_are_iso_8601_only_as_the_api_takes_them() -> None:
    """'03/04/2023' and '13/04/2023' in one DD/MM column were read as 4 March and 13 April (month first
    where it could be, day first elsewhere), with no problem reported; now each such value is named."""
    good = {"2023-12-25": "2023-12-25", " 2023-12-25 ": "2023-12-25", "20231225": "2023-12-25",
            "2023-12-25T10:00:00": "2023-12-25 10:00", "2023-1-5": "2023-01-05"}
    bad = ["03/04/2023", "13/04/2023", "25/12/2023", "Dec 25 2023", "12.11.2023", "1/2/23", "2023-02-30"]
    for dtype in (object, "string[pyarrow]"):
        values = [*good, *bad]
        frame = pd.DataFrame([{**DECL, "declaration_id": f"D-{i}", "declaration_date": d}
                              for i, d in enumerate(values)]).astype({"declaration_date": dtype})
        out, report = normalize_table(frame, DECLARATION)
        assert out["declaration_date"].tolist()[:len(good)] == [pd.Timestamp(v) for v in good.values()]
        named = [(p.row, p.value) for p in report.problems if p.column == "declaration_date"]
        assert named == [(len(good) + 1 + i, v) for i, v in enumerate(bad)], named
        assert {p.expected for p in report.problems} == {"a date (YYYY-MM-DD)"}


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_column_named_twice_is_refused_naming_both_places(kind: str, tmp_path: Path) -> None:
    """CSV: the second customs_value became 'customs_value.1', carried through, and the first won with
    exit 0; Parquet: an AttributeError traceback. Files are read by validate, train, score and the pages
    through the same readers (features.io.read_raw, batch's inspect_manifest)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from batch._input import inspect_manifest
    from features.io import LoadError, read_raw

    names = ["declaration_id", "customs_value", "hs_code", "customs_value"]
    rows = [["D1", "10", "820600", "999"]]
    path = tmp_path / f"dup.{kind}"
    if kind == "csv":
        path.write_text(",".join(names) + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    else:
        pq.write_table(pa.table([pa.array([r[i] for r in rows]) for i in range(len(names))], names=names), path)
    said = f"{path}: column 'customs_value' appears twice (columns 2 and 4): keep one"
    for read in (read_raw, inspect_manifest):
        with pytest.raises(LoadError) as exc:
            read(path)
        assert str(exc.value) == said
    r = CliRunner().invoke(app, ["validate", str(path)])
    assert r.exit_code == 2 and "appears twice (columns 2 and 4)" in " ".join(r.output.split()), r.output


@pytest.mark.parametrize("dtype", ["int64", "Int64", "float64", "int64[pyarrow]"])
def test_hs_codes_stored_as_numbers_are_refused_not_read_without_their_leading_zero(dtype: str, tmp_path: Path) -> None:
    """0901002652 (coffee, chapter 09) in an int64 Parquet column was read as 901002652 (chapter 90), a
    valid-looking 9-digit code, and scored as such with no problem reported."""
    frame = pd.DataFrame([{**DECL, "declaration_id": f"N-{i}", "hs_code": code}
                          for i, code in enumerate([901002652, 820600])]).astype({"hs_code": dtype})
    out, report = normalize_table(frame, DECLARATION)
    hs = [p for p in report.problems if p.column == "hs_code"]
    assert [p.row for p in hs] == [1, 2] and "holds numbers, which drop leading zeros" in hs[0].expected
    path = tmp_path / "numbers.parquet"
    frame.to_parquet(path, index=False)
    r = CliRunner().invoke(app, ["validate", str(path)])
    assert r.exit_code == 1 and "drop leading zeros" in " ".join(r.output.split()), r.output


def test_dates_stored_as_numbers_are_named_as_such_and_values_shown_plainly() -> None:
    """20231225 in an int64 column was read as nanoseconds since 1970 and reported as
    "got np.int64(20231225), expected a date between …"."""
    frame = pd.DataFrame([{**DECL, "declaration_id": f"N-{i}", "declaration_date": d}
                          for i, d in enumerate([20231225, 20230101])]).astype({"declaration_date": "int64"})
    _out, report = normalize_table(frame, DECLARATION)
    dates = [p for p in report.problems if p.column == "declaration_date"]
    assert [p.row for p in dates] == [1, 2] and "this column holds numbers" in dates[0].expected
    assert "got 20231225, expected a date (YYYY-MM-DD text or a date column" in str(dates[0])


def test_a_date_column_value_out_of_range_is_quoted_as_a_date() -> None:
    """A Parquet date column's 1989-04-12 was quoted as its nanoseconds: "got 608256000000000000"."""
    frame = pd.DataFrame([{**DECL, "declaration_id": f"O-{i}", "declaration_date": d}
                          for i, d in enumerate(["1989-04-12", "1989-04-12 13:30"])])
    frame["declaration_date"] = pd.to_datetime(frame["declaration_date"], format="ISO8601")
    _out, report = normalize_table(frame, DECLARATION)
    shown = [str(p) for p in report.problems if p.column == "declaration_date"]
    assert len(shown) == 2
    assert "got '1989-04-12', expected a date between 1990-01-01" in shown[0], shown
    assert "1989-04-12T13:30:00" in shown[1] and "608" not in " ".join(shown), shown


def test_the_training_mapping_scores_new_declarations_that_have_no_label_yet(tiny_model: Any, tmp_path: Path) -> None:
    """A mapping's labels read a column of the labelled history (Fraud); tonight's declarations have no
    outcome yet, so no such column, and score with the mapping train used stopped: 'names columns missing
    from the data: ['Fraud']'. Scoring reads no label: their columns are needed only where labels are read."""
    import numpy as np

    from batch import BatchOptions, score_manifest
    from features.contracts import DECLARATION
    from tests.conftest import TinyRegistry
    from tests.factories import make_declarations

    frame = make_declarations(np.random.default_rng(5), 30, start="2023-06-01", days=10)
    manifest = tmp_path / "tonight.csv"
    frame.to_csv(manifest, index=False)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(json.dumps({"columns": {c: c for c in frame.columns if c in DECLARATION.columns},
                                   "labels": {"fraud": {"column": "Fraud", "equals": 1}}}))
    out = tmp_path / "scores.parquet"
    summary = score_manifest(manifest, out, "models:/tiny/1", BatchOptions(capacity="10%", chunk_rows=20,
                                                                           pipelined=False),
                             mapping=mapping, load_model=TinyRegistry("tiny", tiny_model.model).load)
    assert summary.counts.rows_scored == 30
    m = mapping_from_dict(json.loads(mapping.read_text()))
    with pytest.raises(MappingError, match=r"missing from the data: \['Fraud'\]"):
        m.apply(frame)  # where labels are read (validate, train, evaluate) the column is still required
    assert "label_fraud" not in m.apply(frame, labels=False).columns


def test_a_date_without_its_day_is_a_problem_not_the_first_of_the_period(api: Api) -> None:
    """'2023' was read as 2023-01-01 and '2023-06' as 2023-06-01 without a word (a truncated export, a
    period column mapped as the date), moving every such declaration to another day of the time split and
    the history features; the API refused them. Now a file names them as it names other non-dates."""
    from features.contracts import _reference_normalize_table

    dates = ["2023", "2023-06", "2023-6", " 2023-06 ", "2023-06-01", "20230601", "2023-06-01T10:00+09:00"]
    for dtype in (object, "string[pyarrow]"):
        frame = pd.DataFrame([{**DECL, "declaration_id": f"P-{i}", "declaration_date": d}
                              for i, d in enumerate(dates)]).astype({"declaration_date": dtype})
        for normalize in (normalize_table, _reference_normalize_table):
            out, report = normalize(frame, DECLARATION)
            assert [(p.row, p.value) for p in report.problems] == [(1, "2023"), (2, "2023-06"), (3, "2023-6"),
                                                                   (4, " 2023-06 ")], normalize
            assert {p.expected for p in report.problems} == {"a date (YYYY-MM-DD)"}
            assert out["declaration_date"].iloc[4:].tolist() == [pd.Timestamp("2023-06-01"),
                                                                 pd.Timestamp("2023-06-01"),
                                                                 pd.Timestamp("2023-06-01 10:00")]
    for d in ("2023", "2023-06"):
        assert api.post("/v1/score", json={**DECL, "declaration_date": d}).status_code == 422
