"""The case file's history of importer, route and goods, and the model page's calibration and weekly hit
rates, on hand-made histories and recorded outcomes whose figures can be counted by hand."""

from __future__ import annotations

import copy
import io
import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import Api, TinyModel, TinyRegistry
from tests.test_workbench import signed_in

# The hand-made history: importer IMP-A ships HS 820600 from CN on the route CN → AE → YE by vessel.
# H1-H3 are inspected before 2023-06-01 (one hit), H4 is never inspected, H5 is inspected after that
# day (a hit the features must not see yet). H6 is another importer's lamp, by air, on the same route.
ROUTE = {"origin_country": "CN", "departure_country": "CN", "transit_countries": "AE", "destination_country": "YE"}
A = {"importer_id": "IMP-A", "declarant_id": "B1", "conveyance": "vessel", "hs_code": "820600", **ROUTE}
B = {"importer_id": "IMP-B", "declarant_id": "B2", "conveyance": "air", "hs_code": "940510", **ROUTE}
HISTORY = [  # (id, declared, who, inspected on, hit)
    ("H1", "2023-03-01", A, "2023-03-02", True),
    ("H2", "2023-03-10", A, "2023-03-11", False),
    ("H3", "2023-04-01", A, "2023-04-01", False),
    ("H4", "2023-05-01", A, None, None),
    ("H5", "2023-06-10", A, "2023-06-12", True),
    ("H6", "2023-02-01", B, "2023-02-02", True),
]
DECLARATION = {"declaration_id": "NEW-1", "declaration_date": "2023-06-01", "direction": "import", "office_id": "O1",
               "office_type": "seaport", **A, "transit_countries": ["AE"], "goods_description": "hand tools",
               "quantity": 10, "gross_weight_kg": 120.0, "customs_value": 900.0, "currency": "USD"}


def _history() -> Any:
    from features.contracts import DECLARATION as DECL_CONTRACT
    from features.contracts import OUTCOME, normalize_table
    from features.history import History

    base = {"direction": "import", "office_id": "O1", "office_type": "seaport", "goods_description": "tools",
            "quantity": 1.0, "gross_weight_kg": 10.0, "customs_value": 900.0, "currency": "USD"}
    decl, _ = normalize_table(pd.DataFrame([{"declaration_id": i, "declaration_date": d, **base, **who}
                                            for i, d, who, _, _ in HISTORY]), DECL_CONTRACT)
    out, report = normalize_table(pd.DataFrame([
        {"declaration_id": i, "inspected_date": on, "inspected": True, "hit": hit, "selection_source": "random",
         "selection_probability": 0.1} for i, _, _, on, hit in HISTORY if on is not None]), OUTCOME)
    assert report.ok, report.summary()
    return History(decl, out)


@pytest.fixture(scope="module")
def hand_model(tiny_model: TinyModel) -> Any:
    """The tiny model with its feature snapshot refreshed from the hand-made history (same booster)."""
    model = copy.deepcopy(tiny_model.model)
    model.pipeline.refresh(_history())
    return model


def _counts(model: Any, **changes: Any) -> dict[str, tuple[str, int, int]]:
    from serving.web.case_history import case_history

    found = case_history(model.pipeline, {**DECLARATION, **changes})
    return {r.prefix: (r.key, r.inspections, r.hits) for r in found.rows}


def test_the_history_counts_what_was_known_before_the_declaration_date(hand_model: Any) -> None:
    assert _counts(hand_model) == {
        "importer": ("IMP-A", 3, 1),  # H1-H3; H4 was not inspected, H5 only on 2023-06-12
        "declarant": ("B1", 3, 1),
        "route": ("CN → AE → YE", 4, 2),  # and IMP-B's lamp H6
        "conveyance": ("vessel", 3, 1),
        "heading": ("HS 8206", 3, 1),
        "hs6": ("HS 820600", 3, 1),
        "hs6_origin_departure": ("HS 820600 from CN via CN", 3, 1),
    }
    later = _counts(hand_model, declaration_date="2023-06-20")
    assert later["importer"] == ("IMP-A", 4, 2) and later["route"][1:] == (5, 3)
    # an outcome counts from the day after its inspection: H3 (inspected 2023-04-01) not yet on that day
    assert _counts(hand_model, declaration_date="2023-04-01")["importer"] == ("IMP-A", 2, 1)
    other = _counts(hand_model, importer_id="NEW-TRADER", transit_countries=[], hs_code="610910")
    assert other["importer"] == ("NEW-TRADER", 0, 0) and other["route"] == ("CN → YE", 0, 0)
    assert other["hs6"] == ("HS 610910", 0, 0)


def test_the_counts_are_those_behind_the_model_features(tiny_model: TinyModel) -> None:
    """On the tiny model's random history: every count equals the feature of the same look-up that has it."""
    pipe = tiny_model.model.pipeline
    cols = pipe.columns(tiny_model.traffic)
    feats = pipe.transform_columns(cols)
    counts = pipe.outcome_counts(cols)
    compared = 0
    for prefix, c in counts.items():
        for stat, name in (("inspections", f"{prefix}_inspections"), ("hits", f"{prefix}_hits")):
            if name in feats:
                np.testing.assert_array_equal(c[stat], feats[name], err_msg=name)
                compared += 1
    assert compared >= 8 and counts["importer"]["hits"].sum() > 0
    assert {"route", "conveyance", "heading", "hs6_origin_departure", "same_value", "office"} <= set(counts)


def test_without_the_declaration_fields_or_a_model_the_page_is_told_why(hand_model: Any) -> None:
    from serving.errors import NoModelLoaded
    from serving.web.case_history import CaseHistory, served_case_history

    class Service:
        def __init__(self, model: Any) -> None:
            self.model = model

        @property
        def served(self) -> Any:
            if self.model is None:
                raise NoModelLoaded("no model is loaded")
            return type("Served", (), {"loaded": type("Loaded", (), {"model": self.model})})()

    # a batch output whose manifest changed since scoring has no declaration fields
    assert "fields are not available" in str(served_case_history(Service(hand_model), {}))
    assert "No model is loaded" in str(served_case_history(Service(None), DECLARATION))
    found = served_case_history(Service(hand_model), DECLARATION)
    assert isinstance(found, CaseHistory) and found.rows[0].inspections == 3


def _upload(api: Api, token: str, records: list[dict[str, Any]]) -> str:
    frame = pd.DataFrame([{**r, "transit_countries": "|".join(r.get("transit_countries") or [])} for r in records])
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    r = api.client.post("/app/manifests", data={"csrf_token": token, "capacity": "1", "random_share": "0"},
                        files={"manifest": ("m.csv", buf.getvalue().encode(), "text/csv")}, follow_redirects=False)
    assert r.status_code == 303, r.text[:2000]
    return str(r.headers["location"])


HISTORY_ROW = re.compile(r'<tr><th scope="row">([^<]+)</th><td>([^<]+)</td><td class="num">(\d+)</td>'
                         r'<td class="num">(\d+)</td>\s*<td class="num">([^<]+)</td></tr>')


def test_the_case_file_shows_the_history_as_the_features_saw_it(make_api: Callable[..., Api], hand_model: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKPROF_SESSION_SECRET", raising=False)
    api = make_api(registry=TinyRegistry("tiny", hand_model))
    url = _upload(api, signed_in(api), [DECLARATION])
    page = api.client.get(f"{url}/declarations/NEW-1")
    assert page.status_code == 200
    table = page.text[page.text.index('id="history"'):]
    table = table[:table.index("</table>")]
    assert "<caption>Past inspections and hits before 2023-06-01</caption>" in table
    rows = {what: (key, int(n), int(h), rate) for what, key, n, h, rate in HISTORY_ROW.findall(table)}
    assert rows["Importer"] == ("IMP-A", 3, 1, "33.3 %")
    assert rows["Route (departure → transit → destination)"] == ("CN → AE → YE", 4, 2, "50.0 %")
    assert rows["Goods: HS subheading"] == ("HS 820600", 3, 1, "33.3 %")
    assert rows["Goods by origin and departure"] == ("HS 820600 from CN via CN", 3, 1, "33.3 %")
    assert len(rows) == 7
    assert "history snapshot runs to 2023-06-12" in page.text


def test_the_model_page_says_plainly_when_there_are_no_outcomes(make_api: Callable[..., Api], tmp_path: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKPROF_SESSION_SECRET", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    api = make_api()
    signed_in(api, "analyst")
    page = api.client.get("/app/model").text
    assert re.search(r'id="training-calibration-note">No champion in the registry', page)
    assert re.search(r'id="live-calibration-note"><strong>Not enough data:</strong> no outcome', page)
    assert re.search(r'id="weekly-note"><strong>Not enough data:</strong>', page)
    assert 'id="weekly-hit-rates"' not in page and 'id="live-calibration"' not in page


def test_the_model_page_shows_weekly_hit_rates_and_calibration_of_recorded_outcomes(
        make_api: Callable[..., Api], tiny_model: TinyModel, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Twenty declarations ranked with 6 inspections, half of them at random; outcomes: one model-selected hit,
    two random-stratum hits, everything else clean."""
    monkeypatch.delenv("RISKPROF_SESSION_SECRET", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'none.db'}")
    api = make_api()
    r = api.post("/v1/manifests/rank", json={"declarations": tiny_model.traffic[:20], "capacity": 6,
                                             "random_share": 0.5, "seed": 3})
    assert r.status_code == 200, r.text
    chosen = [it for it in r.json()["items"] if it["selection"] in ("model", "random")]
    by = {s: [it for it in chosen if it["selection"] == s] for s in ("model", "random")}
    assert (len(by["model"]), len(by["random"])) == (3, 3)
    hits = {by["model"][0]["declaration_id"], by["random"][0]["declaration_id"], by["random"][1]["declaration_id"]}
    outcomes = [{"declaration_id": it["declaration_id"], "inspected_date": "2023-07-03", "inspected": True,
                 "hit": it["declaration_id"] in hits, "selection_source": it["selection"],
                 "selection_probability": it["selection_probability"]} for it in chosen]
    assert api.post("/v1/outcomes", json=outcomes).status_code == 200
    signed_in(api, "analyst")
    page = api.client.get("/app/model").text
    weekly = page[page.index('id="weekly-hit-rates"'):]
    weekly = weekly[:weekly.index("</table>")]
    cells = re.findall(r'<td class="num">([^<]+)</td>', weekly)
    assert cells == ["1 of 3", "33.3 %", "2 of 3", "66.7 %"]  # one week: scored today
    week = re.findall(r'<th scope="row">([\d-]+)</th>', weekly)
    monday = (pd.Timestamp.now(tz="UTC").normalize() - pd.Timedelta(days=pd.Timestamp.now(tz="UTC").weekday()))
    assert week == [monday.date().isoformat()]
    assert re.search(r'id="live-calibration-note"><strong>Not enough data to judge calibration:</strong> 6\s+'
                     r'outcomes, fewer than the 50 needed', page)
    live = page[page.index('id="live-calibration"'):]
    live = live[:live.index("</table>")]
    counts = [int(n) for n in re.findall(r'<td class="num">(\d+)</td></tr>', live)]
    assert sum(counts) == 6  # the 6 outcomes of model and random selections, by risk band


@pytest.mark.slow
def test_the_model_page_shows_the_champions_test_period_calibration_from_its_run(
        make_api: Callable[..., Api], tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real MLflow registry in tmp_path; the champion's run carries training's evaluation/metrics.json."""
    import mlflow

    monkeypatch.delenv("RISKPROF_SESSION_SECRET", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = mlflow.MlflowClient(uri, uri)
    experiment = client.create_experiment("workbench-history", artifact_location=(tmp_path / "artifacts").as_uri())
    client.create_registered_model("tiny")
    calibration = {"predicted": [0.01, 0.05, 0.4], "observed": [0.0, 0.06, 0.35], "count": [100, 100, 20]}
    for version in ("1", "2"):
        run = client.create_run(experiment)
        if version == "1":
            client.log_text(run.info.run_id, json.dumps({"test": {"calibration": calibration}}),
                            "evaluation/metrics.json")
        client.set_terminated(run.info.run_id)
        client.create_model_version("tiny", str(tmp_path), run_id=run.info.run_id)
        client.set_registered_model_alias("tiny", "champion" if version == "1" else "challenger", version)
    api = make_api()
    signed_in(api, "analyst")
    page = api.client.get("/app/model").text
    table = page[page.index('id="training-calibration"'):]
    table = table[:table.index("</table>")]
    assert "Champion version 1" in table
    rows = re.findall(r'<tr><th scope="row">(\d+)</th><td class="num">([\d.]+)</td>\s*<td class="num">([\d.]+)</td>'
                      r'<td class="num">(\d+)</td></tr>', table)
    assert rows == [("1", "0.010", "0.000", "100"), ("2", "0.050", "0.060", "100"), ("3", "0.400", "0.350", "20")]
    # the challenger's run has none: only the champion's calibration is read
    assert page.count('id="training-calibration"') == 1
