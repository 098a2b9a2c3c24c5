"""Skew test: the API path (JSON → contract model → records) computes exactly the features and
scores of the batch/training path (file → validated DataFrame) for the same declarations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

# every test here reads the model trained and registered in MLflow for the session
pytestmark = [pytest.mark.slow, pytest.mark.integration]

N = 300


@pytest.fixture(scope="module")
def batch_frame(trained_model) -> pd.DataFrame:
    """A few hundred generated declarations as the batch path sees them (validated DataFrame)."""
    from features.contracts import DECLARATION
    from features.io import load_table

    frame = load_table([trained_model.data["declarations"]], DECLARATION).frame
    frame = frame[[c for c in frame.columns if not c.startswith("label_")]]
    # a spread of dates, with and without missing values
    return frame.sample(N, random_state=1).reset_index(drop=True)


def to_payload(frame: pd.DataFrame, vary: bool = True) -> list[dict[str, Any]]:
    """Rows as a client would send them: ISO dates, lists of transit countries, missing = absent/null."""
    out = []
    for i, row in enumerate(frame.to_dict(orient="records")):
        item: dict[str, Any] = {}
        for k, v in row.items():
            if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT:
                if vary and i % 2:
                    item[k] = None  # every other row: explicit nulls instead of absent keys
                continue
            if isinstance(v, pd.Timestamp):
                v = v.strftime("%Y-%m-%d")
            elif k == "transit_countries":
                v = [c for c in str(v).split("|") if c] if not (vary and i % 3 == 0) else str(v)
            elif isinstance(v, np.generic):
                v = v.item()
            item[k] = v
        out.append(item)
    return json.loads(json.dumps(out))  # exactly what goes over the wire


def api_records(payload: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from serving.parsing import validate_records

    records, is_list = validate_records(payload, "declaration", len(payload))
    assert is_list
    return records


def test_api_features_equal_batch_features(trained_model, batch_frame: pd.DataFrame) -> None:
    from scoring.registry import load_risk_model

    model = load_risk_model(trained_model.uri).model
    records = api_records(to_payload(batch_frame))
    api_feats = model.pipeline.transform(records)
    batch_feats = model.pipeline.transform(batch_frame)
    assert list(api_feats.columns) == model.feature_names
    assert api_feats.shape == (N, len(model.feature_names))
    # exact, NaN-aware: NaN only where the other side has NaN, every other value identical
    a, b = api_feats.to_numpy(), batch_feats.to_numpy()
    assert np.array_equal(np.isnan(a), np.isnan(b))
    assert np.array_equal(np.nan_to_num(a, nan=0.0), np.nan_to_num(b, nan=0.0))
    pd.testing.assert_frame_equal(api_feats, batch_feats, check_exact=True)
    # the sample exercises missing values and several families' look-ups
    assert np.isnan(a).any() and (a != 0).any(axis=0).sum() > len(model.feature_names) // 2


def test_single_record_features_equal_batch_row(trained_model, batch_frame: pd.DataFrame) -> None:
    from scoring.registry import load_risk_model

    model = load_risk_model(trained_model.uri).model
    records = api_records(to_payload(batch_frame))
    batch_feats = model.pipeline.transform(batch_frame)
    for i in (0, 7, 123, N - 1):
        one = model.pipeline.transform(records[i:i + 1])
        pd.testing.assert_frame_equal(one, batch_feats.iloc[[i]].reset_index(drop=True), check_exact=True)


def test_http_scores_equal_batch_scores(trained_model, batch_frame: pd.DataFrame, tmp_path: Path) -> None:
    import mlflow

    from scoring import LaneThresholds, score_table
    from scoring.registry import load_risk_model
    from tests.conftest import running_api

    client = mlflow.MlflowClient()
    client.set_registered_model_alias(trained_model.name, "skew", trained_model.version)
    try:
        with running_api(tmp_path, None, registry=None, model_name=trained_model.name, model_alias="skew",
                         max_items=N, max_body_bytes=8 * 1024 * 1024) as http:
            settings = http.client.app.state.settings
            resp = http.post("/v1/score", json=to_payload(batch_frame))
    finally:
        client.delete_registered_model_alias(trained_model.name, "skew")
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    model = load_risk_model(trained_model.uri).model
    batch = score_table(model, batch_frame, LaneThresholds(settings.lane_red, settings.lane_yellow),
                        reasons_for="all", top_k=settings.reasons_top_k).records()
    assert [r["declaration_id"] for r in results] == [r["declaration_id"] for r in batch]
    assert [r["risk_score"] for r in results] == [r["risk_score"] for r in batch]
    assert [r["lane"] for r in results] == [r["lane"] for r in batch]
    assert [r["reasons"] for r in results] == [r["reasons"] for r in batch]
    assert [r["unseen_values"] for r in results] == [r["unseen_values"] for r in batch]
