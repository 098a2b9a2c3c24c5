"""Bad input at the edges of the API: refused with a 4xx JSON body naming where it is, never read in part
without a word, never a 500."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from serving import outcomes_frame
from serving.errors import MalformedBody
from serving.parsing import parse_json
from tests.conftest import Api, TinyModel, running_api

DECL: dict[str, Any] = {
    "declaration_id": "E-0001", "declaration_date": "2023-06-01", "direction": "import", "office_type": "seaport",
    "importer_id": "IMP000123", "origin_country": "CN", "departure_country": "CN", "transit_countries": ["AE"],
    "destination_country": "YE", "conveyance": "vessel", "hs_code": "820600", "goods_description": "hardware, lamp",
    "quantity": 1234, "gross_weight_kg": 5400.0, "customs_value": 8200.0, "currency": "USD",
}


@pytest.fixture(scope="module")
def api(tiny_model: TinyModel, seizures_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with running_api(tmp_path_factory.mktemp("edges"), tiny_model.model, seizures=seizures_file) as running:
        yield running


def decl(i: int, **kw: Any) -> dict[str, Any]:
    return {**DECL, "declaration_id": f"E-{i:04d}", **kw}


def text(obj: Any) -> str:
    return json.dumps(obj)


def with_repeat(obj_text: str, key: str, value: Any) -> str:
    """An object's JSON text with ``key`` given once more (at its end)."""
    assert obj_text.endswith("}")
    return f"{obj_text[:-1]}, {json.dumps(key)}: {json.dumps(value)}}}"


def post_raw(api: Api, path: str, body: str, role: str = "officer") -> Any:
    return api.post(path, role=role, content=body.encode(), headers={"Content-Type": "application/json"})


# ---- a key given twice ---------------------------------------------------------------------------
def repeats(obj: Any) -> bool:
    """The oracle: does any object of this JSON text hold a key twice?"""
    found = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        found = found or len({k for k, _ in items}) < len(items)
        return dict(items)

    json.loads(obj, object_pairs_hook=pairs)
    return found


def test_a_key_given_twice_in_one_declaration_is_400_naming_it_and_nothing_is_scored(api: Api) -> None:
    """{"customs_value": 5, "customs_value": 5000} was scored with 5000 without a word."""
    before = len(api.audit())
    body = with_repeat(text(decl(1, customs_value=5)), "customs_value", 5000)
    resp = post_raw(api, "/v1/score", body)
    assert resp.status_code == 400, resp.text
    (p,) = resp.json()["detail"]
    assert p["field"] == "customs_value" and "item" not in p
    assert "duplicate key 'customs_value'" in p["message"]
    assert len(api.audit()) == before


def test_a_key_given_twice_in_a_list_names_the_item(api: Api) -> None:
    items = [text(decl(1)), with_repeat(text(decl(2)), "hs_code", "930200"), text(decl(3))]
    resp = post_raw(api, "/v1/score", "[" + ", ".join(items) + "]")
    assert resp.status_code == 400, resp.text
    assert resp.json()["detail"] == [{"item": 1, "field": "hs_code", "message": resp.json()["detail"][0]["message"]}]


def test_a_key_given_twice_in_a_manifest_or_its_parameters_is_named_with_its_path(api: Api) -> None:
    items = [text(decl(1)), with_repeat(text(decl(2)), "hs_code", "930200")]
    body = with_repeat('{"capacity": 1, "declarations": [' + ", ".join(items) + "]}", "capacity", 2)
    resp = post_raw(api, "/v1/manifests/rank", body)
    assert resp.status_code == 400, resp.text
    assert [(p.get("item"), p["field"]) for p in resp.json()["detail"]] == [(None, "capacity"),
                                                                          (1, "declarations.hs_code")]


def test_a_key_given_twice_in_an_outcome_is_400(api: Api) -> None:
    outcome = {"declaration_id": "E-0001", "inspected_date": "2023-06-02", "inspected": True,
               "selection_source": "model", "selection_probability": 1.0, "hit": False}
    resp = post_raw(api, "/v1/outcomes", with_repeat(text(outcome), "hit", True))
    assert resp.status_code == 400, resp.text
    assert resp.json()["detail"][0]["field"] == "hit"
    assert outcomes_frame(api.store).empty


def test_a_key_given_twice_in_a_profile_condition_is_400_naming_the_condition(api: Api) -> None:
    condition = with_repeat('{"field": "hs_code", "op": "prefix", "values": ["8206"]}', "op", "equals")
    body = ('{"id": "P-DUP", "name": "tools", "criterion": "hand tools", "conditions": [' + condition + '],'
            ' "action": {"lane": "red"}, "valid_from": "2023-01-01", "status": "active", "owner": "a"}')
    resp = post_raw(api, "/v1/profiles", body, role="analyst")
    assert resp.status_code == 400, resp.text
    assert [(p.get("item"), p["field"]) for p in resp.json()["detail"]] == [(0, "conditions.op")]
    assert api.get("/v1/profiles/P-DUP").status_code == 404


@pytest.mark.parametrize("body", [
    '{"a": 1, "\\u0061": 2}',  # the same key written two ways
    '[{"a": "x : y"}, {"b": {"c": 1, "c": 1}}]',  # a colon after a space in a string, and a nested repeat
    '{"t": "10:30", "a": "\\" :", "a": 1}',  # colons inside strings, one after an escaped quote
    '{"a" : 1,\n "a"\n:\t2}',  # whitespace before the colons
])
def test_repeats_are_found_whatever_the_strings_and_spacing(body: str) -> None:
    with pytest.raises(MalformedBody) as caught:
        parse_json(body.encode())
    assert "duplicate key" in caught.value.problems[0].message


@pytest.mark.parametrize("body", [
    '{"a": "x : y {", "b": "\\" : ", "c": {"d": "10:30"}}',  # colons and braces inside strings
    '{"a" :  1, "b"\n:\t{"a": 1}}',  # the same key in two objects, whitespace before colons
    '[{"a": 1}, {"a": 1}]', '[]', '"a: b"', "1",
])
def test_bodies_without_a_repeat_are_read_as_json(body: str) -> None:
    assert parse_json(body.encode()) == json.loads(body)


# keys that collide often; strings holding colons, quotes, braces and whitespace before a colon
KEYS = st.sampled_from(["a", "b", "c", "a:", '"', "{", " :", "\\"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10, 10),
                    st.text(alphabet='ab:{}[] "\\\t\n', max_size=8))
SPACES = st.sampled_from(["", " ", "\n", "\t ", "     "])


@st.composite
def json_texts(draw: st.DrawFn, depth: int = 0) -> str:
    """JSON text whose objects may repeat keys, with whitespace drawn around the colons."""
    kind = draw(st.sampled_from(["scalar", "list", "object"] if depth < 3 else ["scalar"]))
    if kind == "scalar":
        return json.dumps(draw(SCALARS))
    n = draw(st.integers(0, 4))
    if kind == "list":
        return "[" + ",".join(draw(json_texts(depth + 1)) for _ in range(n)) + "]"
    return "{" + ",".join(f"{json.dumps(draw(KEYS))}{draw(SPACES)}:{draw(SPACES)}{draw(json_texts(depth + 1))}"
                          for _ in range(n)) + "}"


@given(json_texts(), st.sampled_from([0, 5_000]))
def test_a_body_is_refused_exactly_when_an_object_repeats_a_key(body: str, padding: int) -> None:
    """Small and large bodies (counted by numpy from 4 kB) alike, against json.loads keeping the pairs."""
    body = f'[{body}, "{"x" * padding}"]' if padding else body
    if repeats(body):
        with pytest.raises(MalformedBody):
            parse_json(body.encode())
    else:
        assert parse_json(body.encode()) == json.loads(body)


def test_a_large_body_with_one_repeat_among_many_declarations_is_found() -> None:
    items = [text(decl(i)) for i in range(300)]
    items[257] = with_repeat(items[257], "quantity", 1)
    with pytest.raises(MalformedBody) as caught:
        parse_json(("[" + ",".join(items) + "]").encode())
    assert [(p.item, p.field) for p in caught.value.problems] == [(257, "quantity")]


# ---- a trailing slash ----------------------------------------------------------------------------
BEHIND_TLS_PROXY = {"Host": "riskprof.example", "X-Forwarded-Proto": "https"}  # a proxy not in FORWARDED_ALLOW_IPS


@pytest.mark.parametrize(("method", "path", "meant"), [
    ("POST", "/v1/score/", "/v1/score"), ("POST", "/v1/manifests/rank/", "/v1/manifests/rank"),
    ("GET", "/v1/profiles/", "/v1/profiles"), ("PUT", "/v1/profiles/", "/v1/profiles"),
    ("GET", "/v1/profiles/P-1/", "/v1/profiles/P-1"), ("GET", "/health/", "/health"),
])
def test_an_api_path_with_a_trailing_slash_is_404_naming_the_path_without_it(api: Api, method: str, path: str,
                                                                              meant: str) -> None:
    """It was a 307 to http://riskprof.example/v1/score (built from the request): followed, the key and the
    body went again in clear text."""
    before = len(api.audit())
    resp = api.client.request(method, path, json=decl(1), headers={**api.h("admin"), **BEHIND_TLS_PROXY},
                              follow_redirects=False)
    assert resp.status_code == 404, resp.text
    assert "location" not in resp.headers
    assert f"did you mean {meant!r}" in resp.json()["detail"]
    assert len(api.audit()) == before


def test_an_unknown_path_with_a_trailing_slash_is_still_a_plain_404(api: Api) -> None:
    resp = api.get("/v1/nothing-here/")
    assert resp.status_code == 404 and resp.json() == {"detail": "Not Found"}


@pytest.mark.parametrize(("path", "location"), [
    ("/app", "/app/"), ("/app/manifests/", "/app/manifests"), ("/app/profiles/?status=active", "/app/profiles?status=active"),
])
def test_a_page_with_or_without_its_slash_redirects_relative_to_the_address_used(api: Api, path: str,
                                                                                 location: str) -> None:
    resp = api.client.get(path, headers=BEHIND_TLS_PROXY, follow_redirects=False)
    assert resp.status_code == 307
    assert resp.headers["location"] == location  # the browser keeps https and the host it used
    assert api.client.get(location, follow_redirects=False).status_code in (200, 303)  # 303: to the sign-in page


# ---- a query parameter given twice ---------------------------------------------------------------
@pytest.mark.parametrize(("method", "path", "name"), [
    ("GET", "/v1/reports/trends?years=2022&years=2023", "years"),  # as requests sends params={"years": [...]}
    ("GET", "/reports/trends?years=2022&years=2023", "years"),
    ("GET", "/v1/monitoring?since=2023-01-01&since=2024-01-01", "since"),
    ("GET", "/v1/alerts?status=open&limit=5&limit=1000", "limit"),
    ("POST", "/v1/score?model=tiny@champion&model=tiny/7", "model"),
])
def test_a_query_parameter_given_twice_is_422_naming_it(api: Api, method: str, path: str, name: str) -> None:
    """The last value was read and the others dropped without a word (?years=2022&years=2023 reported 2023)."""
    before = len(api.audit())
    resp = api.client.request(method, path, json=decl(1), headers=api.h("admin"))
    assert resp.status_code == 422, resp.text
    (p,) = resp.json()["detail"]
    assert p["field"] == name and "given 2 times" in p["message"] and len(p["value"]) == 2
    assert len(api.audit()) == before


def test_query_parameters_given_once_are_read_as_before(api: Api) -> None:
    resp = api.get("/v1/reports/trends?years=2022,2023")
    assert resp.status_code == 200 and resp.json()["years"] == [2022, 2023]
    assert api.get("/v1/alerts?status=open&limit=5", role="officer").status_code == 200


def test_the_pages_keep_their_own_queries(api: Api) -> None:
    resp = api.client.get("/app/sign-in?next=/app/&next=/app/manifests", follow_redirects=False)
    assert resp.status_code == 200


# ---- a client that goes away ---------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/score", "/v1/profiles"])
def test_a_client_closing_the_connection_mid_body_is_no_error(api: Api, path: str,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """A cancelled upload was logged as 'unexpected error' with two tracebacks (one from the server) and
    answered 500; it is an info line and a 400 that nobody reads."""
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "http.request", "body": b'[{"declaration_id": "E-', "more_body": True},
                     {"type": "http.disconnect"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"testserver"), (b"x-api-key", api.keys["admin"].encode()),
                         (b"content-type", b"application/json")],
             "client": ("127.0.0.1", 50000), "server": ("testserver", 80), "state": {}}
    with caplog.at_level(logging.INFO, logger="riskprof.serving"):
        asyncio.run(api.client.app(scope, receive, send))
    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("closed the connection" in r.getMessage() for r in caplog.records)


# ---- a NUL character in the path -----------------------------------------------------------------
class RefusesNul:
    """A profile store on PostgreSQL: psycopg refuses a NUL in a query parameter with a ValueError."""

    def __getattr__(self, name: str) -> Any:
        def query(*args: Any, **kwargs: Any) -> Any:
            if any("\x00" in str(a) for a in (*args, *kwargs.values())):
                raise ValueError("A string literal cannot contain NUL (0x00) characters.")
            raise AssertionError(f"{name} called")
        return query


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/profiles/P%00"), ("GET", "/v1/profiles/%00/stats"), ("PUT", "/v1/profiles/%00"),
    ("GET", "/v1/watchlists/%00"), ("PUT", "/v1/watchlists/w%00"),
])
def test_a_nul_character_in_an_id_of_the_path_is_404_without_a_query(api: Api, method: str, path: str) -> None:
    """No profile id or list name holds a NUL; on PostgreSQL the look-up raised and answered 500."""
    from serving.routes_profiles import get_profile_store

    api.client.app.dependency_overrides[get_profile_store] = lambda: RefusesNul()
    try:
        resp = api.client.request(method, path, json={"name": "x"}, headers=api.h("admin"))
    finally:
        api.client.app.dependency_overrides.clear()
    assert resp.status_code == 404, resp.text
    assert "NUL" in resp.json()["detail"]


def test_a_nul_character_in_a_profile_id_is_404_on_postgresql(make_api: Any, pg_url: str) -> None:
    from serving import migrations
    from serving.store import make_engine

    engine = make_engine(pg_url)
    migrations.upgrade(engine)
    engine.dispose()
    api = make_api(database_url=pg_url)
    for path in ("/v1/profiles/P%00", "/v1/profiles/P%00/stats", "/v1/watchlists/w%00"):
        assert api.get(path).status_code == 404, path
