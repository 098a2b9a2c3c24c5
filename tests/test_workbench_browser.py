"""The targeting workbench in a real browser: Debian's Chromium (Playwright, no browser download) against a
real uvicorn process serving the suite's tiny model (tests/api_process.py).

Screenshots of the main pages are written to docs/screenshots/ (linked from docs/workbench.md).
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from serving.store import audit_events, outcomes_frame
from tests.api_process import ApiProcess
from tests.factories import make_declarations

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[1]
AXE = REPO / "serving" / "web" / "static" / "vendor" / "axe.min.js"
SHOTS = REPO / "docs" / "screenshots"
SEIZURES = REPO / "tests" / "data" / "reports" / "seizures_small.csv"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
N_ROWS = 300
SCRIPT = "<script>window.__pwned = 1</script><b>bold</b> hand tools"
PROFILE_HS = "930190"  # only the rows given this code match the profile created below


@pytest.fixture(scope="module")
def manifest_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = make_declarations(np.random.default_rng(7), N_ROWS, start="2023-06-01", days=20, prefix="W")
    frame.loc[3, "goods_description"] = SCRIPT
    frame.loc[[10, 20], "hs_code"] = PROFILE_HS
    path = tmp_path_factory.mktemp("manifest") / "manifest.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def server(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from serving import Store
    from serving.roles import Role

    folder = tmp_path_factory.mktemp("workbench")
    url = f"sqlite:///{folder / 'serving.db'}"
    store = Store.from_url(url)
    keys = {role.value: store.create_api_key(f"web-{role.value}", role) for role in Role}
    keys["revoked"] = store.create_api_key("web-revoked", Role.officer)
    model = folder / "model.pkl"
    model.write_bytes(pickle.dumps(tiny_model.model))
    nightly = _nightly_output(tiny_model, folder / "out")
    api = ApiProcess(model, {"RISKPROF_DATABASE_URL": url, "RISKPROF_SEIZURES_PATH": str(SEIZURES),
                             "RISKPROF_KEY_CACHE_SECONDS": "0", "RISKPROF_BATCH_OUTPUT_DIR": str(nightly.parent),
                             # the model page looks at the registry: none here (tests/test_workbench.py has one)
                             "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'no-mlflow.db'}"},
                     folder / "api.log").start()
    try:
        yield {"url": api.url, "keys": keys, "store": store, "api": api, "nightly": nightly}
    finally:
        api.stop()
        store.dispose()


def _nightly_output(tiny_model: Any, out: Path) -> Path:
    """A real batch run (``riskprof score``'s library function) of a 40-row manifest into ``out``."""
    from batch import BatchOptions, score_manifest
    from tests.conftest import TinyRegistry

    out.mkdir()
    make_declarations(np.random.default_rng(5), 40, start="2023-06-01", days=20, prefix="B").to_parquet(
        out / "manifest-0621.parquet", index=False)
    score_manifest(out / "manifest-0621.parquet", out / "scores-0621.parquet", "models:/tiny/1",
                   BatchOptions(capacity="4", random_share=0.25, reasons_for="all"),
                   load_model=TinyRegistry("tiny", tiny_model.model).load)
    return out / "scores-0621.parquet"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: dict[str, Any]) -> Iterator[Any]:
    # bypass_csp only so that the test can inject axe-core; the pages themselves run under their CSP
    context = browser.new_context(base_url=server["url"], bypass_csp=True, viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, errors


def sign_in(page: Any, key: str, next_path: str = "/app/manifests") -> None:
    page.goto(next_path)
    assert "/app/sign-in" in page.url
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def upload(page: Any, path: Path, capacity: str = "5%", random_share: str = "0.1") -> None:
    page.goto("/app/manifests")
    page.get_by_label("Manifest file").set_input_files(str(path))
    page.get_by_label("Inspection capacity").fill(capacity)
    page.get_by_label("Random share").fill(random_share)
    page.get_by_role("button", name="Rank the manifest").click()
    page.wait_for_load_state()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("""async () => (await axe.run(document, {resultTypes: ['violations']})).violations
        .map(v => ({id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(' '))}))""")
    return [v for v in found if v["impact"] in ("serious", "critical")]


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def table_rows(page: Any) -> list[dict[str, str]]:
    heads = page.locator("#ranked thead th").all_inner_texts()
    out = []
    for row in page.locator("#ranked tbody tr").all():
        out.append(dict(zip(heads, row.locator("td").all_inner_texts(), strict=True)))
    return out


# ---- sign-in ------------------------------------------------------------------------------------
def test_a_wrong_key_is_refused_on_the_page_and_the_right_one_signs_in(page: Any, server: dict[str, Any]) -> None:
    sign_in(page, "rp_not_a_key")
    assert "/app/sign-in" in page.url
    summary = page.locator(".error-summary")
    assert "not valid" in summary.inner_text()
    assert summary.get_by_role("link").get_attribute("href") == "#api_key"
    assert not axe_violations(page)
    shot(page, "sign-in-error")
    page.get_by_label("API key").fill(server["keys"]["officer"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert page.url.endswith("/app/manifests")
    assert "web-officer (officer)" in page.locator("header").inner_text()
    cookie = next(c for c in page.context.cookies() if c["name"] == "riskprof_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert server["keys"]["officer"] not in cookie["value"]  # only a signed session id travels
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()
    page.goto("/app/manifests")
    assert "/app/sign-in" in page.url


def test_a_revoked_key_ends_the_session_at_the_next_page(page: Any, server: dict[str, Any]) -> None:
    sign_in(page, server["keys"]["revoked"])
    assert page.url.endswith("/app/manifests")
    assert server["store"].revoke_key("web-revoked")
    page.goto("/app/alerts")
    assert "/app/sign-in" in page.url


# ---- manifests ----------------------------------------------------------------------------------
def test_an_uploaded_manifest_is_ranked_with_lanes_in_words_and_filters(page: Any, server: dict[str, Any],
                                                                        manifest_file: Path) -> None:
    sign_in(page, server["keys"]["officer"])
    upload(page, manifest_file)
    assert re.search(r"/app/manifests/[\w-]+$", page.url), page.url
    assert page.locator("#total").inner_text() == str(N_ROWS)
    rows = table_rows(page)
    assert len(rows) == 50  # the first page of 300
    assert [int(r["Rank"]) for r in rows] == list(range(1, 51))
    assert all(r["Lane"].lower() in ("red", "yellow", "green") for r in rows)  # the lane is a word, not a colour
    risks = [float(r["Risk"]) for r in rows]
    assert sum(1 for r in rows if r["Selected"] != "–") >= 1
    assert all(r["Top reasons"] for r in rows)
    assert not axe_violations(page)
    shot(page, "manifest-ranked")
    # the model's order: among the model's own picks, risk never increases down the list
    model_picks = [float(r["Risk"]) for r in rows if r["Selected"] == "model"]
    assert model_picks == sorted(model_picks, reverse=True) and max(risks) == max(model_picks)

    page.get_by_label("Lane").select_option("red")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    red = table_rows(page)
    n_red = int(page.locator("#total").inner_text())
    assert 0 < n_red < N_ROWS and len(red) == min(n_red, 50)
    assert {r["Lane"].lower() for r in red} == {"red"}
    assert "lane=red" in page.url

    with page.expect_download() as dl:
        page.get_by_role("link", name="Download these as CSV").click()
    csv = pd.read_csv(dl.value.path(), dtype={"hs_code": str})
    assert len(csv) == n_red and set(csv["lane"]) == {"red"}
    assert list(csv["rank"]) == sorted(csv["rank"])

    page.goto(page.url.split("?")[0] + "?page=6")
    assert [int(r["Rank"]) for r in table_rows(page)] == list(range(251, 301))


def test_a_recent_batch_output_opens_on_the_ranked_page_as_scored(page: Any, server: dict[str, Any]) -> None:
    sign_in(page, server["keys"]["officer"])
    listed = page.locator("#batch-outputs tbody tr")
    assert listed.count() == 1 and "tiny version 1" in listed.inner_text()
    page.get_by_role("link", name="scores-0621.parquet").click()
    page.wait_for_load_state()
    assert "in the nightly batch" in page.locator(".lead").inner_text()
    written = pd.read_parquet(server["nightly"]).sort_values("rank")
    rows = table_rows(page)
    assert [r["Declaration"] for r in rows] == written["declaration_id"].tolist()
    assert [r["Lane"].strip().lower() for r in rows] == written["lane"].tolist()  # the lane in words, as written
    assert all(r["Route"] for r in rows)  # the declarations, read again from the manifest the run scored
    assert not axe_violations(page)
    shot(page, "batch-output")
    page.get_by_role("link", name=rows[0]["Declaration"]).click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name=f"Declaration {rows[0]['Declaration']}").count() == 1


def test_a_script_in_the_goods_description_is_shown_as_text(page: Any, server: dict[str, Any],
                                                           manifest_file: Path) -> None:
    sign_in(page, server["keys"]["officer"])
    upload(page, manifest_file)
    page.goto(page.url + "/declarations/W000003")
    assert SCRIPT in page.locator("#declaration-fields").inner_text()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main b").count() == 0


def test_a_bad_file_names_the_row_and_column_on_the_page(page: Any, server: dict[str, Any],
                                                         tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("declaration_id,declaration_date,hs_code\nB1,2023-06-01,940360\nB2,2023-13-45,12\n")
    sign_in(page, server["keys"]["officer"])
    upload(page, bad)
    problem = page.locator("#file-problem").inner_text()
    assert "row 2, column declaration_date" in problem and "row 2, column hs_code" in problem
    assert "Traceback" not in page.content()
    assert not axe_violations(page)
    shot(page, "manifest-bad-file")
    not_a_table = tmp_path / "notes.txt"
    not_a_table.write_text("hello")
    upload(page, not_a_table)
    assert "choose a .csv" in page.locator("#file-problem").inner_text()


# ---- case file and outcome ----------------------------------------------------------------------
def test_an_outcome_recorded_on_the_case_file_is_stored_and_audited(page: Any, server: dict[str, Any],
                                                                    manifest_file: Path) -> None:
    sign_in(page, server["keys"]["officer"])
    upload(page, manifest_file)
    first = page.locator("#ranked tbody tr").first.get_by_role("link")
    declaration_id = first.inner_text()
    first.click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == f"Declaration {declaration_id}"
    assert page.locator(".bar").count() >= 3  # the reasons as bars
    assert page.locator("#declaration-fields dt").count() >= 10  # every field of the declaration
    history = page.get_by_role("table", name="Past inspections and hits before 2023-06")  # named by its caption
    assert history.locator("tbody th[scope=row]").all_inner_texts()[:3] == ["Importer", "Declarant",
                                                                           "Route (departure → transit → destination)"]
    assert not axe_violations(page)
    shot(page, "declaration")

    page.get_by_role("button", name="Record the outcome").click()  # nothing chosen
    page.wait_for_load_state()
    assert "Choose whether" in page.locator(".error-summary").inner_text()
    page.get_by_label("Hit: something was found").check()
    page.get_by_label("Date of the inspection").fill("2023-06-25")
    page.get_by_label("What was found").fill("two pistols in a machine part")
    page.get_by_label("Linked seizure case").fill("C2023-000777")
    page.get_by_role("button", name="Record the outcome").click()
    page.wait_for_load_state()
    assert "The outcome is recorded" in page.locator(".notice").inner_text()
    assert "C2023-000777" in page.locator("#stored-outcome").inner_text()

    stored = outcomes_frame(server["store"]).set_index("declaration_id").loc[declaration_id]
    assert bool(stored["hit"]) and bool(stored["inspected"]) and stored["case_id"] == "C2023-000777"
    assert str(stored["inspected_date"])[:10] == "2023-06-25"
    assert "web-officer" in page.locator("#stored-outcome").inner_text()  # recorded_by, read back from the store
    with server["store"].engine.connect() as conn:
        params = conn.execute(sa.select(audit_events.c.params).where(audit_events.c.endpoint == "web/outcome")).scalars().all()
    assert {"declaration_id": declaration_id, "hit": True, "found": "two pistols in a machine part",
            "case_id": "C2023-000777"} in params


def test_the_case_workflow_assigns_changes_status_and_keeps_notes(page: Any, server: dict[str, Any],
                                                                  manifest_file: Path) -> None:
    from serving.case_store import CaseStore

    sign_in(page, server["keys"]["officer"])
    upload(page, manifest_file)
    page.goto(page.url + "/declarations/W000007")
    state = page.locator("#case-state")
    assert "new" in state.inner_text() and "nobody" in state.inner_text()
    page.get_by_role("button", name="Assign to me").click()
    page.wait_for_load_state()
    assert "web-officer" in page.locator("#case-state").inner_text()
    assert page.get_by_role("button", name="Assign to me").count() == 0
    page.get_by_label("Status").select_option("referred for examination")
    page.get_by_role("button", name="Change status").click()
    page.wait_for_load_state()
    page.get_by_role("button", name="Add the note").click()  # empty: refused beside the field
    page.wait_for_load_state()
    assert "Enter the note" in page.locator(".error-message").inner_text()
    page.get_by_label("Add a note").fill("driver nervous; <script>window.__pwned = 1</script>")
    page.get_by_role("button", name="Add the note").click()
    page.wait_for_load_state()
    assert "<script>" in page.locator("#notes").inner_text() and page.evaluate("window.__pwned") is None
    assert not axe_violations(page)
    shot(page, "case-workflow")

    case = CaseStore(server["store"].engine).case("W000007")
    assert (case["assignee"], case["status"]) == ("web-officer", "referred for examination")
    assert [(n["author"], n["text"]) for n in case["notes"]] == [
        ("web-officer", "driver nervous; <script>window.__pwned = 1</script>")]
    with server["store"].engine.connect() as conn:
        done = conn.execute(sa.select(audit_events.c.endpoint, audit_events.c.params)
                            .where(audit_events.c.endpoint.like("web/case-%"))).all()
    assert ("web/case-status", {"declaration_id": "W000007", "value": "referred for examination"}) in done
    assert ("web/case-assign", {"declaration_id": "W000007"}) in done
    assert sum(1 for e, _ in done if e == "web/case-note") == 1  # the refused empty note is not audited


def test_axe_in_these_tests_does_report_a_serious_fault(page: Any, server: dict[str, Any]) -> None:
    """Guard: the accessibility checks above can fail (an unlabelled field is a critical violation)."""
    sign_in(page, server["keys"]["officer"])
    page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<input type=text>')")
    assert any(v["id"] == "label" for v in axe_violations(page))


def test_a_post_without_the_csrf_token_is_refused(page: Any, server: dict[str, Any], manifest_file: Path) -> None:
    sign_in(page, server["keys"]["officer"])
    upload(page, manifest_file)
    target = page.url + "/declarations/W000005/outcome"
    resp = page.request.post(target, form={"result": "hit", "inspected_date": "2023-06-25"})
    assert resp.status == 403 and "security token" in resp.text()
    resp = page.request.post(target, form={"result": "hit", "inspected_date": "2023-06-25", "csrf_token": "forged"})
    assert resp.status == 403
    assert "W000005" not in set(outcomes_frame(server["store"])["declaration_id"])


# ---- roles, alerts, analysts --------------------------------------------------------------------
def test_an_officer_cannot_reach_the_analyst_pages(page: Any, server: dict[str, Any]) -> None:
    sign_in(page, server["keys"]["officer"])
    assert page.get_by_role("link", name="Model").count() == 0
    for path in ("/app/model", "/app/trends", "/app/trends/report"):
        resp = page.goto(path)
        assert resp.status == 403 and "needs the analyst role" in page.locator("main").inner_text(), path
        assert page.get_by_role("button", name="Sign out").count() == 1  # still signed in, with the menu
    assert not axe_violations(page)


def test_a_profile_raises_an_alert_that_an_officer_acknowledges(page: Any, server: dict[str, Any],
                                                                 manifest_file: Path) -> None:
    import httpx

    profile = {"id": "P-WEB", "name": "firearms parts", "criterion": "HS 9301 in a cargo manifest",
               "conditions": [{"field": "hs_code", "op": "prefix", "values": ["9301"]}],
               "action": {"lane": "red", "select": True, "alert": True}, "valid_from": "2023-01-01",
               "status": "active", "owner": "analyst1"}
    r = httpx.post(f"{server['url']}/v1/profiles", json=profile, headers={"X-API-Key": server["keys"]["analyst"]})
    assert r.status_code in (201, 409), r.text
    sign_in(page, server["keys"]["officer"])
    upload(page, manifest_file)
    page.get_by_label("Profile hit").select_option("P-WEB")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    hits = table_rows(page)
    assert sorted(r["Declaration"] for r in hits) == ["W000010", "W000020"]
    assert all(r["Lane"].lower() == "red" and r["Selected"] == "rule" for r in hits)
    page.goto("/app/alerts?status=open")
    alerts = page.locator("#alerts tbody tr")
    assert {"W000010", "W000020"} <= set(page.locator("#alerts tbody tr td:nth-child(2)").all_inner_texts())
    assert not axe_violations(page)
    shot(page, "alerts")
    before = alerts.count()
    alerts.first.get_by_role("button", name=re.compile("Acknowledge")).click()
    page.wait_for_load_state()
    page.goto("/app/alerts?status=open")
    assert page.locator("#alerts tbody tr").count() == before - 1


def test_the_analyst_pages_render_without_accessibility_faults(page: Any, server: dict[str, Any]) -> None:
    sign_in(page, server["keys"]["analyst"], "/app/model")
    assert page.url.endswith("/app/model")
    assert "version\n1" in page.locator("#model-info").inner_text().lower()
    assert page.locator("#metrics").count() == 1
    assert "no MLflow registry" in page.locator("#registry-note").inner_text()
    assert "Not enough data" in page.locator("#live-calibration-note").inner_text()  # at most a few outcomes here
    assert not axe_violations(page)
    shot(page, "model")
    page.goto("/app/trends?years=2023")
    frame = page.frame_locator("iframe.report")
    frame.locator("body").wait_for()
    assert "2023" in frame.locator("body").inner_text()
    assert not axe_violations(page)
    shot(page, "trends")


def test_an_analyst_creates_a_profile_on_the_page_and_it_fires_on_the_next_upload(page: Any, server: dict[str, Any],
                                                                               manifest_file: Path) -> None:
    sign_in(page, server["keys"]["analyst"], "/app/profiles/new")
    page.get_by_label("Profile id").fill("P-PAGE")
    page.get_by_label("Name").fill("ammunition by post")
    page.get_by_label("Criterion").fill("HS 9301 declared by post")
    first = page.get_by_role("group", name="Condition 1")
    first.get_by_label("Field").select_option("hs_code")
    first.get_by_label("Test").select_option("prefix")
    first.get_by_label("Values").fill("93x")  # not an HS prefix: refused beside the field, nothing stored
    page.get_by_label("Valid from").fill("2023-01-01")
    page.get_by_role("button", name="Create the profile").click()
    page.wait_for_load_state()
    assert page.locator(".error-summary").count() == 1
    error = page.locator("#c1_values-error").inner_text()  # beside the field it is about, naming the row
    assert "Condition 1" in error and "HS prefix" in error
    assert page.locator(".error-message").count() == 1
    assert page.get_by_label("Name").input_value() == "ammunition by post"  # what was typed is kept
    assert not axe_violations(page)
    shot(page, "profile-form-error")
    page.get_by_role("group", name="Condition 1").get_by_label("Values").fill("9301")
    page.get_by_role("button", name="Create the profile").click()
    page.wait_for_load_state()
    assert page.url.endswith("/app/profiles/P-PAGE")
    assert "HS 9301 declared by post" in page.locator("#profile-fields").inner_text()
    upload(page, manifest_file)
    page.get_by_label("Profile hit").select_option("P-PAGE")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    assert sorted(r["Declaration"] for r in table_rows(page)) == ["W000010", "W000020"]
    page.goto("/app/profiles/P-PAGE")
    assert "matches" in page.locator("#profile-stats").inner_text()
    assert not axe_violations(page)
    shot(page, "profile")
    page.get_by_role("link", name="Edit this profile").click()  # a second condition: a new version
    page.wait_for_load_state()
    second = page.get_by_role("group", name="Condition 2")
    second.get_by_label("Field").select_option("conveyance")
    second.get_by_label("Values").fill("mail, express courier")
    assert not axe_violations(page)
    page.get_by_label("Name").press("Enter")  # Enter in a field saves (it does not add a condition row)
    page.wait_for_load_state()
    assert "Saved as version 2" in page.locator(".notice").inner_text()
    page.get_by_role("link", name="Edit this profile").click()
    page.wait_for_load_state()
    page.get_by_role("button", name="Add a condition").click()  # a fourth row, nothing saved
    page.wait_for_load_state()
    fourth = page.get_by_role("group", name="Condition 4")
    fourth.get_by_label("Field").select_option("origin_country")
    fourth.get_by_label("Test").select_option("not_in")
    fourth.get_by_label("Values").fill("ZZ")
    page.get_by_role("button", name="Save a new version").click()
    page.wait_for_load_state()
    assert "Condition 4: 'ZZ' is not an ISO 3166" in page.locator("#c4_values-error").inner_text()
    page.get_by_role("group", name="Condition 4").get_by_label("Values").fill("FR")
    page.get_by_role("button", name="Save a new version").click()
    page.wait_for_load_state()
    assert "Saved as version 3" in page.locator(".notice").inner_text()
    fields = page.locator("#profile-fields").inner_text()
    assert "conveyance in mail, express courier" in fields and "origin_country not in FR" in fields
    assert page.locator("#profile-versions tbody tr td:first-child").all_inner_texts() == [
        "3 (shown)", "Version 2", "Version 1"]
    page.get_by_role("button", name="Retire this profile").click()
    page.wait_for_load_state()
    assert "retired" in page.locator("#profile-fields").inner_text()


def test_an_officer_reads_profiles_but_cannot_create_or_retire(page: Any, server: dict[str, Any]) -> None:
    sign_in(page, server["keys"]["officer"], "/app/profiles")
    assert page.get_by_role("link", name="Create a profile").count() == 0
    assert not axe_violations(page)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    resp = page.goto("/app/profiles/new")
    assert resp.status == 403
    resp = page.request.post("/app/profiles", form={"csrf_token": token, "id": "P-OFFICER", "name": "x"})
    assert resp.status == 403 and "analyst role" in resp.text()


def test_an_analyst_creates_a_watch_list_and_adds_and_removes_an_entry(page: Any, server: dict[str, Any]) -> None:
    import httpx

    sign_in(page, server["keys"]["analyst"], "/app/watchlists")
    page.get_by_role("link", name="Create a watch list").click()
    page.wait_for_load_state()
    page.get_by_label("Name").fill("WL-WEB")
    page.get_by_label("Field").select_option("importer_id")
    page.get_by_label("Description").fill("importers named in tip-offs")  # no action: it serves profiles only
    page.get_by_role("button", name="Create the watch list").click()
    page.wait_for_load_state()
    assert page.url.endswith("/app/watchlists/WL-WEB")
    page.get_by_label("Value").fill("IMP-WEB-1")
    page.get_by_role("button", name="Add the entry").click()  # no reason: refused beside the field
    page.wait_for_load_state()
    assert "Enter the reason" in page.locator("#reason-error").inner_text()
    assert page.get_by_label("Value").input_value() == "IMP-WEB-1"
    assert not axe_violations(page)
    page.get_by_label("Reason").fill("tip-off <script>window.__pwned = 1</script>")
    page.get_by_label("Expires").fill("2030-12-31")
    page.get_by_role("button", name="Add the entry").click()
    page.wait_for_load_state()
    row = page.locator("#watchlist-entries tbody tr").first.locator("td").all_inner_texts()
    assert row[:4] == ["IMP-WEB-1", "tip-off <script>window.__pwned = 1</script>", "web-analyst", "2030-12-31"]
    assert page.evaluate("window.__pwned") is None
    assert not axe_violations(page)
    page.goto("/app/watchlists/WL-WEB")
    shot(page, "watchlist")
    stored = httpx.get(f"{server['url']}/v1/watchlists/WL-WEB", headers={"X-API-Key": server["keys"]["officer"]}).json()
    assert [e["value"] for e in stored["entries"]] == ["IMP-WEB-1"] and stored["versions"] == [1, 2]
    page.get_by_role("button", name="Remove IMP-WEB-1").click()
    page.wait_for_load_state()
    assert page.locator("#watchlist-entries").count() == 0 and "No entries yet" in page.locator("main").inner_text()
    page.get_by_role("link", name="Edit the description or action").click()
    page.wait_for_load_state()
    assert not axe_violations(page)
    page.get_by_label("Raise an alert").check()
    page.get_by_role("button", name="Save a new version").click()
    page.wait_for_load_state()
    assert "raise an alert" in page.locator("#watchlist-fields").inner_text()
    assert page.locator("#watchlist-versions tbody tr").count() == 4  # create, add, remove, edit
    page.get_by_role("link", name="Watch lists", exact=True).click()
    page.wait_for_load_state()
    assert "WL-WEB" in page.locator("#watchlists").inner_text()
    assert not axe_violations(page)


def test_with_javascript_a_filter_change_updates_the_table_in_place(page: Any, server: dict[str, Any],
                                                                   manifest_file: Path) -> None:
    sign_in(page, server["keys"]["officer"])
    upload(page, manifest_file)
    page.evaluate("window.__same_document = true")
    page.get_by_label("Lane").select_option("yellow")  # htmx: no button, no page load
    page.wait_for_function("document.querySelector('#total').textContent !== '300'")
    assert page.evaluate("window.__same_document") is True
    assert {r["Lane"].lower() for r in table_rows(page)} == {"yellow"}
    assert "lane=yellow" in page.url  # the address still says what is shown


def test_the_pages_without_javascript_still_rank_and_filter(browser: Any, server: dict[str, Any],
                                                           manifest_file: Path) -> None:
    context = browser.new_context(base_url=server["url"], java_script_enabled=False)
    try:
        pg = context.new_page()
        sign_in(pg, server["keys"]["officer"])
        upload(pg, manifest_file)
        pg.get_by_label("Lane").select_option("green")
        pg.get_by_role("button", name="Filter").click()
        pg.wait_for_load_state()
        assert {r["Lane"].lower() for r in table_rows(pg)} == {"green"}
    finally:
        context.close()
