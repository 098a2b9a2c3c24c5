"""Baselines the model is compared with on the test period: a points score of risk indicators and a
logistic regression on the same numeric features."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from training.metrics import ranking_metrics


def rule_score(model_feats: dict[str, np.ndarray], cols: dict[str, np.ndarray]) -> np.ndarray:
    """The report's risk indicators as a points score: cover HS, risky route, conveyance, value."""
    conv = cols["conveyance"]
    score = (
        2.0 * (model_feats["cover_seizure_cases"] > 0)
        + 2.0 * ((model_feats["route_seizure_cases"] > 0) | (model_feats["transit_seizure_cases"] > 0))
        + 1.0 * np.isin(conv.astype(str), ["express courier", "mail"])
        + 1.5 * model_feats["chapter_93"]
        + 1.0 * (np.nan_to_num(model_feats["value_per_kg_z"]) < -1.0)
        + 0.5 * np.log1p(model_feats["departure_seizure_cases"]) / 5.0
    )
    # tie-break inside a points level with the trader's smoothed hit rate
    return score + 0.1 * model_feats["importer_hit_rate"]


def logistic_regression_scores(X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Test-row scores of a logistic regression fitted on the training rows (missing → median)."""
    lr = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                       LogisticRegression(max_iter=300))
    Xn = np.nan_to_num(X, nan=np.nan, posinf=1e6, neginf=-1e6)
    lr.fit(Xn[train], y[train])
    return lr.predict_proba(Xn[test])[:, 1]


def baseline_metrics(feats: dict[str, np.ndarray], cols: dict[str, np.ndarray], X: np.ndarray,
                     names: Sequence[str], categorical: Sequence[str], y: np.ndarray, train: np.ndarray,
                     test: np.ndarray, revenue: np.ndarray | None) -> dict[str, dict[str, Any]]:
    """Test-period metrics of each baseline (the logistic regression reads the numeric features only)."""
    numeric = [j for j, n in enumerate(names) if n not in categorical]
    return {
        "rules": ranking_metrics(y[test], rule_score(feats, cols)[test], revenue),
        "logistic_regression": ranking_metrics(y[test], logistic_regression_scores(X[:, numeric], y, train, test),
                                               revenue),
    }
