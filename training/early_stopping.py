"""LightGBM early-stopped on the validation periods: the number of rounds and the validation scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import lightgbm as lgb
import numpy as np


@dataclass
class ValidationFit:
    """One configuration early-stopped on the validation periods (``validation_folds``)."""

    booster: lgb.Booster  # trained before the latest validation period (calibration reads its scores)
    rounds: int  # boosting rounds where the mean validation AUC of the periods peaks
    auc: float  # that mean AUC
    labels: list[np.ndarray]  # per validation period, latest first
    scores: list[np.ndarray]  # the period's scores at ``rounds``


def early_stop_on_periods(params: dict[str, Any], X: np.ndarray, y: np.ndarray,
                          folds: Sequence[tuple[np.ndarray, np.ndarray]], names: list[str], cats: list[str],
                          num_boost_round: int = 1000, early_stopping: int = 100) -> ValidationFit:
    """Train on each fold's rows and stop where the mean validation AUC over the folds peaks
    (``lgb.cv`` with time-ordered folds; ``early_stopping=0``: exactly ``num_boost_round`` rounds)."""
    used = np.flatnonzero(np.logical_or.reduce([m for fold in folds for m in fold]))
    at = np.full(len(y), -1)
    at[used] = np.arange(len(used))
    data = lgb.Dataset(X[used], label=y[used], feature_name=names, categorical_feature=cats)
    idx = [(at[np.flatnonzero(t)], at[np.flatnonzero(v)]) for t, v in folds]
    cv = lgb.cv({**params, "metric": "auc"}, data, num_boost_round=num_boost_round, folds=idx, stratified=False,
                shuffle=False, return_cvbooster=True,
                callbacks=[lgb.early_stopping(early_stopping, verbose=False)] if early_stopping > 0 else [])
    curve = cast(list[float], cv["valid auc-mean"])
    rounds = len(curve)  # lgb.cv cuts the curve at the best round when it stops early
    boosters = cast(lgb.CVBooster, cv["cvbooster"]).boosters
    for b in boosters:
        b.best_iteration = rounds
        b.free_dataset()  # selection holds a fit per group: keep its trees, not its training data
    scores = [np.asarray(b.predict(X[v], num_iteration=rounds)) for b, (_, v) in zip(boosters, folds, strict=True)]
    return ValidationFit(boosters[0], rounds, float(curve[rounds - 1]), [y[v] for _, v in folds], scores)
