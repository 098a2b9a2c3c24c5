"""The workbench's sessions, CSRF and settings through the app in-process (the browser tests drive the pages)."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.conftest import Api
from tests.factories import make_declarations

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:500]
    return found.group(1)


def signed_in(api: Api, role: str = "officer") -> str:
    """Sign the client in; the CSRF token of the new session."""
    token = csrf_of(api.client.get("/app/sign-in").text)
    r = api.client.post("/app/sign-in", data={"csrf_token": token, "api_key": api.keys[role]}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return csrf_of(api.client.get("/app/manifests").text)


@pytest.fixture
def api(make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch) -> Api:
    monkeypatch.delenv("RISKPROF_SESSION_SECRET", raising=False)
    return make_api()


def test_pages_redirect_to_sign_in_and_are_not_in_the_openapi_schema(api: Api) -> None:
    r = api.client.get("/app/manifests/x?lane=red", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/app/sign-in?next=/app/manifests/x%3Flane%3Dred"
    assert not [p for p in api.client.get("/openapi.json").json()["paths"] if p.startswith("/app")]


def test_sign_in_without_the_csrf_token_is_refused_and_signs_nobody_in(api: Api) -> None:
    api.client.get("/app/sign-in")
    r = api.client.post("/app/sign-in", data={"api_key": api.keys["officer"]}, follow_redirects=False)
    assert r.status_code == 403 and "security token" in r.text
    assert api.client.get("/app/manifests", follow_redirects=False).status_code == 303


def test_sign_in_issues_a_new_session_id_and_follows_only_local_paths(api: Api) -> None:
    token = csrf_of(api.client.get("/app/sign-in").text)
    before = api.client.cookies.get("riskprof_session")
    r = api.client.post("/app/sign-in", data={"csrf_token": token, "api_key": api.keys["officer"],
                                              "next": "//evil.example/app/"}, follow_redirects=False)
    assert r.headers["location"] == "/app/manifests"
    assert api.client.cookies.get("riskprof_session") != before
    assert "SameSite=strict" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    assert "Secure" not in r.headers["set-cookie"]  # plain HTTP here; Secure over HTTPS


def test_a_tampered_cookie_is_no_session(api: Api) -> None:
    signed_in(api)
    value = api.client.cookies.get("riskprof_session")
    api.client.cookies.set("riskprof_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"), path="/app")
    assert api.client.get("/app/manifests", follow_redirects=False).status_code == 303


def test_pages_carry_a_content_security_policy(api: Api) -> None:
    signed_in(api)
    csp = api.client.get("/app/manifests").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_prod_without_a_session_secret_refuses_the_pages_but_serves_the_api(make_api: Callable[..., Api],
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKPROF_SESSION_SECRET", raising=False)
    prod = make_api(env="prod")
    r = prod.client.get("/app/sign-in")
    assert r.status_code == 503 and "RISKPROF_SESSION_SECRET" in r.text
    assert prod.get("/v1/model", role="admin").status_code == 200
    monkeypatch.setenv("RISKPROF_SESSION_SECRET", "short")
    assert make_api(env="prod").client.get("/app/sign-in").status_code == 503
    monkeypatch.setenv("RISKPROF_SESSION_SECRET", "s" * 40)
    assert make_api(env="prod").client.get("/app/sign-in").status_code == 200


def test_a_capacity_that_is_not_a_number_is_named_beside_its_field(api: Api) -> None:
    token = signed_in(api)
    r = api.client.post("/app/manifests", data={"csrf_token": token, "capacity": "lots", "random_share": "2"},
                        files={"manifest": ("m.csv", b"declaration_id\n", "text/csv")})
    assert r.status_code == 422
    assert 'href="#random_share"' in r.text and 'id="random_share-error"' in r.text


def test_a_manifest_of_one_declaration_says_one_declaration(api: Api) -> None:
    """The pages said "1 declarations ranked" and "1 declarations match the filter"."""
    token = signed_in(api)
    body = make_declarations(np.random.default_rng(6), 1, start="2023-06-01", days=1, prefix="O").to_csv(index=False)
    r = api.client.post("/app/manifests", data={"csrf_token": token, "capacity": "1", "random_share": "0"},
                        files={"manifest": ("one.csv", body.encode(), "text/csv")}, follow_redirects=False)
    assert r.status_code == 303, r.text[:2000]
    text = " ".join(html.unescape(api.client.get(r.headers["location"]).text).split())
    assert "1 declaration ranked by" in text and '1</span> declaration; page 1 of 1' in text
    assert "1 declarations" not in text
    assert "one.csv</a>: 1 declaration, ranked" in api.client.get("/app/manifests").text


def test_a_csv_in_another_encoding_is_ranked_once_its_encoding_is_chosen_on_the_form(api: Api) -> None:
    """The page said to pass ``--encoding``, which a page has no way to; the form now offers the choice."""
    token = signed_in(api)
    frame = make_declarations(np.random.default_rng(5), 20, start="2023-06-01", days=5, prefix="E")
    frame["goods_description"] = "pièces détachées"
    body = frame.to_csv(index=False).encode("cp1252")
    form = {"csrf_token": token, "capacity": "5%", "random_share": "0.1"}

    def upload(**extra: str) -> Any:
        return api.client.post("/app/manifests", data={**form, **extra}, follow_redirects=False,
                               files={"manifest": ("windows.csv", body, "text/csv")})

    r = upload()
    text = " ".join(html.unescape(r.text).split())
    assert r.status_code == 422 and "windows.csv: is not utf-8 text: byte 0xe8 at line 2" in text, text[:3000]
    assert "choose the file's text encoding under “Text encoding”" in text and "--encoding" not in text
    assert '<option value="cp1252">Windows-1252' in r.text
    assert upload(encoding="klingon").status_code == 422
    r = upload(encoding="cp1252")
    assert r.status_code == 303, r.text[:2000]
    url = r.headers["location"]
    first = str(frame["declaration_id"].iloc[0])
    assert all(str(i) in api.client.get(url).text for i in frame["declaration_id"])  # 20 rows: one page
    assert "pièces détachées" in html.unescape(api.client.get(f"{url}/declarations/{first}").text)
    assert '<option value="cp1252" selected>' not in api.client.get("/app/manifests").text  # a fresh form


@pytest.mark.slow
def test_a_ten_thousand_row_manifest_is_ranked_once_and_paged_without_ranking_again(
        make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKPROF_SESSION_SECRET", raising=False)
    api = make_api(max_items=10_000, max_body_bytes=64 * 1024 * 1024)
    token = signed_in(api)
    frame = make_declarations(np.random.default_rng(11), 10_000, start="2023-06-01", days=20, prefix="K")
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    r = api.client.post("/app/manifests", data={"csrf_token": token, "capacity": "2%", "random_share": "0.1"},
                        files={"manifest": ("big.parquet", buf.getvalue(), "application/octet-stream")},
                        follow_redirects=False)
    assert r.status_code == 303, r.text[:2000]
    url = r.headers["location"]
    # how fast a page answers is measured by benchmarks/workbench_speed.py (no wall-clock limit in a test)
    for name, query in (("first", ""), ("last", "?page=200"), ("filtered", "?lane=yellow&office=O2&page=3")):
        page = api.client.get(url + query)
        assert page.status_code == 200 and page.text.count("<tr>") == 51, name  # header + 50 rows
    ranks = [int(x) for x in re.findall(r'<td class="num">(\d+)</td>', api.client.get(url + "?page=200").text)]
    assert ranks[:50] == list(range(9951, 10_001))
    events = api.audit()
    assert (events["endpoint"] == "rank").sum() == 10_000  # ranked once, by the API's service, audited


def test_the_model_page_without_a_registry_says_so(api: Api, monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Any) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    signed_in(api, "analyst")
    page = api.client.get("/app/model")
    assert page.status_code == 200 and "no MLflow registry at" in page.text
    assert not (tmp_path / "none.db").exists()  # looked at, never created


def test_an_api_error_met_by_a_page_is_a_page(api: Api) -> None:
    """With the serving store unavailable the pages answered the API's raw JSON 503 to the browser."""
    from pathlib import Path

    signed_in(api, "officer")
    assert api.client.get("/app/alerts").status_code == 200
    db = Path(api.store.engine.url.database)
    db.rename(db.with_name("away.db"))  # removed while serving: nothing can be recorded or read safely
    page = api.client.get("/app/alerts")
    assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
    assert "Service unavailable" in page.text and "was removed or replaced" in page.text
    api_call = api.client.get("/v1/alerts", headers=api.h("officer"))
    assert api_call.status_code == 503 and api_call.headers["content-type"] == "application/json"


@pytest.mark.slow  # the model page looks at the MLflow registry (~0.5 s)
def test_the_model_page_shows_metrics_by_rate_not_as_python_dicts(api: Api,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """precision_at and recall_at were printed as "{'1': 0.4222222222222222, …}"."""
    metadata = api.service.served.loaded.model.metadata
    monkeypatch.setitem(metadata, "metrics", dict(metadata.get("metrics") or {}))  # restored after the test
    metrics = metadata["metrics"]
    metrics.update(precision_at={"1": 0.4222222222222222, "5": 0.25}, recall_at={"1": 0.1, "5": 0.35})  # as trained
    signed_in(api, "analyst")
    page = api.client.get("/app/model").text
    table = page[page.index('id="metrics"'):page.index("</table>", page.index('id="metrics"'))]
    assert "{" not in table and "&#39;" not in table
    first_rate, first_value = next(iter(metrics["precision_at"].items()))
    assert f"at {first_rate} %: {first_value:.3f}" in table


@pytest.mark.slow
def test_the_model_page_shows_champion_and_challenger_with_their_run_metrics(
        api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """A real MLflow registry in tmp_path: two versions of the served model's name, one run each."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = mlflow.MlflowClient(uri, uri)
    experiment = client.create_experiment("workbench-test")
    client.create_registered_model("tiny")
    for version, p5 in (("1", 0.61), ("2", 0.66)):
        run = client.create_run(experiment)
        for key, value in (("test_precision_at_5", p5), ("test_auc", 0.8), ("train_loss", 0.1)):
            client.log_metric(run.info.run_id, key, value)
        client.set_terminated(run.info.run_id)
        client.create_model_version("tiny", str(tmp_path), run_id=run.info.run_id)
        client.set_registered_model_alias("tiny", "champion" if version == "1" else "challenger", version)
    signed_in(api, "analyst")
    page = api.client.get("/app/model").text
    table = page[page.index('id="aliases"'):]
    rows = re.findall(r"<tr><td>(\w+)</td><td>(\d+)</td>", table)
    assert rows == [("champion", "1"), ("challenger", "2")]
    assert "test_precision_at_5: 0.61" in table and "test_precision_at_5: 0.66" in table
    assert "train_loss" not in table  # the test metrics only


def _pages() -> list[tuple[str, str, str]]:
    """(method, path with sample parameters, the role its dependency asks for or '') of every workbench page."""
    from fastapi.routing import APIRoute

    from serving.web.routes import router
    from serving.web.routes_profiles import router as profiles_router

    def role(route: APIRoute) -> str:
        names = {d.call.__name__ for d in route.dependant.dependencies if d.call is not None}
        return next((n.removeprefix("page_") for n in names if n.startswith("page_")), "")

    out = []
    for route in [*router.routes, *profiles_router.routes]:
        assert isinstance(route, APIRoute)
        path = re.sub(r"\{(\w+)\}", lambda m: "1" if m.group(1) == "alert_id" else "x", route.path)
        out.extend((m, path, role(route)) for m in sorted(route.methods - {"HEAD"}))
    return out


def test_every_page_but_sign_in_asks_for_a_role_and_refuses_callers_without_it(api: Api) -> None:
    pages = _pages()
    assert {p for _, p, r in pages if not r} == {"/app/", "/app/sign-in"}
    assert len(pages) >= 18
    assert {(m, p) for m, p, r in pages if r == "analyst"} == {
        ("GET", "/app/model"), ("GET", "/app/trends"), ("GET", "/app/trends/report"), ("GET", "/app/profiles/new"),
        ("POST", "/app/profiles"), ("POST", "/app/profiles/x/retire"), ("GET", "/app/profiles/x/edit"),
        ("POST", "/app/profiles/x/edit"), ("GET", "/app/watchlists/new"), ("POST", "/app/watchlists"),
        ("POST", "/app/watchlists/x/entries"), ("POST", "/app/watchlists/x/entries/remove"),
        ("GET", "/app/watchlists/x/edit"), ("POST", "/app/watchlists/x/edit")}
    for method, path, _ in pages:  # signed out: GET goes to sign-in, POST is refused
        if path in ("/app/", "/app/sign-in"):
            continue
        r = api.client.request(method, path, follow_redirects=False)
        assert (r.status_code, r.headers.get("location", "")[:13]) == ((303, "/app/sign-in?") if method == "GET"
                                                                      else (403, "")), (method, path)
    token = signed_in(api, "officer")
    for method, path, role in pages:
        if role != "analyst":
            continue
        r = api.client.request(method, path, data={"csrf_token": token} if method == "POST" else None)
        assert r.status_code == 403 and "analyst role" in r.text, (method, path)


def test_declaration_ids_with_slashes_and_url_characters_open_and_take_outcomes(api: Api) -> None:
    """Customs numbers such as 12345/2023/001 could not be opened (a plain 404: the route's id stopped at the
    first slash), and after an outcome or a workflow step the redirect put an id with '#' or '?' into the URL
    as it was (the rest read as a fragment or a query)."""
    from urllib.parse import quote

    token = signed_in(api)
    frame = make_declarations(np.random.default_rng(8), 3, start="2023-06-01", days=2, prefix="S")
    ids = ["12345/2023/001", "A#1 ?x", "plain"]
    frame["declaration_id"] = ids
    r = api.client.post("/app/manifests", data={"csrf_token": token, "capacity": "3", "random_share": "0"},
                        files={"manifest": ("m.csv", frame.to_csv(index=False).encode(), "text/csv")},
                        follow_redirects=False)
    assert r.status_code == 303, r.text[:2000]
    manifest = r.headers["location"]
    listed = api.client.get(manifest).text
    for i in ids[:2]:
        case = f"{manifest}/declarations/{quote(i, safe='')}"
        assert f'href="{case}"' in listed
        page = api.client.get(case)
        assert page.status_code == 200 and f"Declaration {html.escape(i)}" in page.text, (i, page.status_code)
        done = api.client.post(f"{case}/outcome", follow_redirects=False, data={
            "csrf_token": token, "result": "no-hit", "inspected_date": "2023-06-04", "found": ""})
        assert (done.status_code, done.headers["location"]) == (303, f"{case}?recorded=true"), done.text[:500]
        step = api.client.post(f"{case}/workflow", follow_redirects=False,
                               data={"csrf_token": token, "action": "note", "note": "seen"})
        assert (step.status_code, step.headers["location"]) == (303, f"{case}#workflow"), step.text[:500]
    from serving.store import outcomes_frame

    assert sorted(outcomes_frame(api.store)["declaration_id"]) == sorted(ids[:2])


def test_the_case_file_shows_why_an_outcome_or_a_status_was_refused(api: Api) -> None:
    """A second, different outcome was refused (422) with no message on the page (the error summary sat in
    the branch shown only before an outcome exists); "what was found" past 2,000 characters was cut in the
    audit log without a word; a refused status was typed into the note box."""
    token = signed_in(api)
    frame = make_declarations(np.random.default_rng(6), 8, start="2023-06-01", days=3, prefix="C")
    r = api.client.post("/app/manifests", data={"csrf_token": token, "capacity": "2", "random_share": "0"},
                        files={"manifest": ("m.csv", frame.to_csv(index=False).encode(), "text/csv")},
                        follow_redirects=False)
    assert r.status_code == 303, r.text[:2000]
    case = f"{r.headers['location']}/declarations/{frame['declaration_id'].iloc[0]}"
    outcome = {"csrf_token": token, "result": "hit", "inspected_date": "2023-06-04", "found": "x" * 2_001}
    long = api.client.post(f"{case}/outcome", data=outcome)
    assert long.status_code == 422
    assert "at most 2,000 characters (this is 2,001)" in html.unescape(long.text)
    assert api.client.post(f"{case}/outcome", data={**outcome, "found": "a rifle"}, follow_redirects=False
                           ).status_code == 303
    conflict = api.client.post(f"{case}/outcome", data={**outcome, "result": "no-hit", "found": ""})
    text = " ".join(html.unescape(conflict.text).split())
    assert conflict.status_code == 422 and "There is a problem" in text and "not overwritten" in text, text[:3000]
    header_only = api.client.post("/app/manifests", data={"csrf_token": token, "capacity": "2", "random_share": "0"},
                                  files={"manifest": ("h.csv", frame.head(0).to_csv(index=False).encode(), "text/csv")})
    assert header_only.status_code == 422
    assert "h.csv: the file holds no declarations (a header only)" in html.unescape(header_only.text)
    status = api.client.post(f"{case}/workflow", data={"csrf_token": token, "action": "status", "status": "bogus"})
    assert status.status_code == 422 and "There is a problem" in status.text
    assert '<textarea class="textarea" id="note" name="note" rows="3" aria-describedby="note-hint"></textarea>' \
        in status.text


def test_a_bad_address_or_an_oversized_upload_is_an_error_page_not_the_apis_json(make_api: Callable[..., Api],
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A page number typed as text, an alert id that is no number, or a manifest over the body limit answered
    the API's JSON body (``{"detail": [...]}``) in the officer's browser; the API itself still answers JSON."""
    monkeypatch.delenv("RISKPROF_SESSION_SECRET", raising=False)
    api = make_api(max_body_bytes=64 * 1024)
    token = signed_in(api)
    for r in (api.client.get("/app/manifests/abc?page=two"),
              api.client.post("/app/alerts/first/ack", data={"csrf_token": token})):
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html"), r.text[:300]
        assert "Request refused" in r.text and "valid integer" in r.text and "Sign out" in r.text
    body = b"declaration_id\n" + b"D0000001\n" * 10_000
    r = api.client.post("/app/manifests", data={"csrf_token": token, "capacity": "5%"},
                        files={"manifest": ("big.csv", body, "text/csv")})
    assert r.status_code == 413 and r.headers["content-type"].startswith("text/html"), r.text[:300]
    assert "larger than the limit of 65,536 bytes" in r.text and "riskprof score" in r.text
    assert api.get("/v1/alerts?status=x", role="officer").headers["content-type"] == "application/json"
    r = api.client.post("/v1/manifests/rank", content=body, headers={"X-API-Key": api.keys["officer"]})
    assert r.status_code == 413 and r.headers["content-type"] == "application/json"


def test_years_the_trend_report_cannot_read_are_named_beside_the_years_field(api: Api) -> None:
    """The report's error page (the whole workbench, header and navigation) was shown inside the report's
    frame, and the page itself answered 200; now the form says what is wrong beside its field."""
    signed_in(api, "analyst")
    r = api.client.get("/app/trends?years=last+year")
    assert r.status_code == 422
    assert 'id="years-error"' in r.text and "expected years such as 2022,2023 or 2021-2023" in r.text
    assert 'href="#years"' in r.text and 'value="last year"' in r.text and "<iframe" not in r.text
    assert 'aria-describedby="years-hint years-error"' in r.text
    ok = api.client.get("/app/trends?years=+2023+")
    assert ok.status_code == 200 and 'src="/app/trends/report?years=+2023+"' in ok.text and "years-error" not in ok.text


def test_the_case_file_names_the_values_the_model_never_saw(api: Api) -> None:
    """It said "values the model never saw: office_id, importer_id": the fields, not the values the API
    gives in ``unseen_values``."""
    token = signed_in(api)
    frame = make_declarations(np.random.default_rng(7), 4, start="2023-06-01", days=3, prefix="U")
    frame.loc[0, "importer_id"] = "IMP-NEVER-SEEN"
    r = api.client.post("/app/manifests", data={"csrf_token": token, "capacity": "1", "random_share": "0"},
                        files={"manifest": ("m.csv", frame.to_csv(index=False).encode(), "text/csv")},
                        follow_redirects=False)
    first = str(frame["declaration_id"].iloc[0])
    page = api.client.get(f"{r.headers['location']}/declarations/{first}").text
    row = re.search(r"<dt>values the model never saw</dt><dd>([^<]*)</dd>", page)
    assert row, page[-3000:]
    assert "importer_id IMP-NEVER-SEEN" in html.unescape(row.group(1))
