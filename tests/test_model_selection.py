"""Feature-group selection on validation, the bootstrap AUC behind it, and a tie-free calibration."""

from __future__ import annotations

from types import SimpleNamespace

import lightgbm as lgb
import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from scoring import Calibrator
from training.metrics import weighted_auc
from training.train import select_feature_groups


def test_weighted_auc_equals_sklearn_on_the_resampled_rows():
    rng = np.random.default_rng(3)
    y = rng.random(3000) < 0.15
    s = np.round(rng.random(3000) + 0.4 * y, 2)  # many ties
    w = rng.poisson(1.0, size=(4, 3000))
    got = weighted_auc(y, s, w)
    for b in range(4):
        rows = np.repeat(np.arange(3000), w[b])
        assert abs(got[b] - roc_auc_score(y[rows], s[rows])) < 1e-12
    assert abs(weighted_auc(y, s, np.ones((1, 3000)))[0] - roc_auc_score(y, s)) < 1e-12


def _fake_pipeline(names: list[str], family_of: dict[str, str]) -> SimpleNamespace:
    """What selection reads of a fitted pipeline: names, categorical names, families and groups."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(family_of[n], []).append(n)
    return SimpleNamespace(feature_names_=names, categorical_=[], family_of_=family_of, groups=lambda: groups)


def _drift_problem(n: int, seed: int = 0):
    """``good`` predicts the label in every period; ``drift`` predicts it in training only and is
    reversed in validation (a feature whose meaning changed), ``noise`` is noise."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.2
    valid = np.arange(n) >= int(0.7 * n)
    good = y * 1.0 + rng.normal(0, 1.0, n)
    good2 = y * 0.5 + rng.normal(0, 1.0, n)
    drift = np.where(valid, -1.0, 1.0) * y + rng.normal(0, 0.7, n)
    noise = rng.normal(0, 1, n)
    X = np.column_stack([good, good2, drift, noise])
    names = ["good", "good2", "drift", "noise"]
    pipe = _fake_pipeline(names, {"good": "route", "good2": "goods_cover", "drift": "trader_history",
                                  "noise": "calendar"})
    p = {"objective": "binary", "verbosity": -1, "num_threads": 2, "seed": 0, "deterministic": True,
         "learning_rate": 0.1, "metric": "auc"}

    def fit(Xm, nm, cats):
        tr = ~valid
        dtrain = lgb.Dataset(Xm[tr], label=y[tr], feature_name=nm, categorical_feature=cats)
        dvalid = lgb.Dataset(Xm[valid], label=y[valid], reference=dtrain)
        return lgb.train(p, dtrain, 200, valid_sets=[dvalid], valid_names=["valid"],
                         callbacks=[lgb.early_stopping(20, verbose=False)])

    return X, names, pipe, fit, (X[valid], y[valid])


def test_a_group_that_hurts_on_validation_is_dropped_and_a_useful_one_kept():
    X, names, pipe, fit, valid = _drift_problem(20_000)
    booster, record = select_feature_groups(X, names, pipe, calendar="auto", select=True, fit=fit, valid=valid)
    assert "trader_history" in record["dropped"] and "route" not in record["dropped"]
    assert record["confidence_without"]["trader_history"] >= 0.9
    assert record["valid_auc_without"]["trader_history"] > record["valid_auc_all"]
    assert record["valid_auc_without"]["route"] < record["valid_auc_all"]
    assert booster.num_feature() == 4 - len(record["dropped"])
    assert record["valid_auc_selected"] >= record["valid_auc_without"]["trader_history"]
    # --no-select: only the calendar rule applies
    _, off = select_feature_groups(X, names, pipe, calendar="on", select=False, fit=fit, valid=valid)
    assert off["dropped"] == [] and off["valid_auc_without"] == {}


def test_a_small_validation_period_does_not_drop_on_noise():
    # the same drift, but far too few validation rows to be sure of it: nothing but calendar may go
    X, names, pipe, fit, valid = _drift_problem(600, seed=1)
    _, record = select_feature_groups(X, names, pipe, calendar="on", select=True, fit=fit, valid=valid)
    for g, conf in record["confidence_without"].items():
        assert (g in record["dropped"]) == (conf >= 0.9 and record["valid_auc_without"][g]
                                           >= record["valid_auc_all"] + 0.0005)


def test_calibration_keeps_the_model_ranking_without_ties():
    rng = np.random.default_rng(0)
    raw = rng.random(5000)
    y = rng.random(5000) < raw ** 3
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    cal = Calibrator(np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_))
    p = cal(raw)
    assert len(np.unique(iso.predict(raw))) < 200  # isotonic alone is a step function…
    assert len(np.unique(p)) == len(np.unique(raw))  # …the calibrator breaks its ties by the raw score
    assert np.array_equal(np.argsort(p, kind="stable"), np.argsort(raw, kind="stable"))
    assert np.max(np.abs(p - iso.predict(raw))) <= 1e-6


def test_at_least_three_families_always_stay():
    X, names, pipe, fit, valid = _drift_problem(20_000)
    # only three families: the drifted one may not go, or explanations would name fewer than three
    keep = [0, 2, 3]
    three = _fake_pipeline([names[j] for j in keep], {names[j]: pipe.family_of_[names[j]] for j in keep})
    booster, record = select_feature_groups(X[:, keep], three.feature_names_, three, calendar="on", select=True,
                                            fit=fit, valid=(valid[0][:, keep], valid[1]))
    assert record["dropped"] == [] and booster.num_feature() == 3
