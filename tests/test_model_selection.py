"""Feature-group selection on validation, the bootstrap AUC behind it, and a tie-free calibration."""

from __future__ import annotations

from types import SimpleNamespace

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from scoring import Calibrator
from training import TimeSplit, early_stop_on_periods, select_feature_groups, validation_folds, weighted_auc


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
    """What selection reads of a fitted pipeline: names, categorical names, families and groups (the
    calendar, as in the real registry, must help to stay)."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(family_of[n], []).append(n)
    return SimpleNamespace(feature_names_=names, categorical_=[], family_of_=family_of, groups=lambda: groups,
                           must_help_groups=lambda: [g for g in groups if g == "calendar"])


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
        return early_stop_on_periods(p, Xm, y, [(~valid, valid)], nm, cats, 200, 20)

    return X, names, pipe, fit


@pytest.mark.slow
def test_a_group_that_hurts_on_validation_is_dropped_and_a_useful_one_kept():
    X, names, pipe, fit = _drift_problem(20_000)
    chosen, record = select_feature_groups(X, names, pipe, calendar="auto", select=True, fit=fit)
    assert "trader_history" in record["dropped"] and "route" not in record["dropped"]
    assert record["confidence_without"]["trader_history"] >= 0.9
    assert record["valid_auc_without"]["trader_history"] > record["valid_auc_all"]
    assert record["valid_auc_without"]["route"] < record["valid_auc_all"]
    assert chosen.booster.num_feature() == 4 - len(record["dropped"])
    assert record["valid_auc_selected"] >= record["valid_auc_without"]["trader_history"]
    # --no-select: only the calendar rule applies
    _, off = select_feature_groups(X, names, pipe, calendar="on", select=False, fit=fit)
    assert off["dropped"] == [] and off["valid_auc_without"] == {}


@pytest.mark.slow
def test_a_small_validation_period_does_not_drop_on_noise():
    # the same drift, but far too few validation rows to be sure of it: nothing but calendar may go
    X, names, pipe, fit = _drift_problem(600, seed=1)
    _, record = select_feature_groups(X, names, pipe, calendar="on", select=True, fit=fit)
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


@pytest.mark.slow
def test_at_least_three_families_always_stay():
    X, names, pipe, fit = _drift_problem(20_000)
    # only three families: the drifted one may not go, or explanations would name fewer than three
    keep = [0, 2, 3]
    three = _fake_pipeline([names[j] for j in keep], {names[j]: pipe.family_of_[names[j]] for j in keep})
    chosen, record = select_feature_groups(X[:, keep], three.feature_names_, three, calendar="on", select=True,
                                            fit=fit)
    assert record["dropped"] == [] and chosen.booster.num_feature() == 3


def test_validation_folds_are_earlier_periods_of_the_same_size_with_a_gap():
    dates = pd.Series(pd.Timestamp("2020-01-01") + pd.to_timedelta(np.repeat(np.arange(300), 10), unit="D"))
    y = np.tile(np.arange(10) == 0, 300)
    split = TimeSplit(pd.Timestamp("2020-08-01"), pd.Timestamp("2020-08-08"), pd.Timestamp("2020-09-20"),
                      pd.Timestamp("2020-09-27"), 7)
    folds = validation_folds(dates, y, split, periods=3)
    assert len(folds) == 3
    tr0, va0 = folds[0]
    assert (dates[va0].min(), dates[va0].max()) == (pd.Timestamp("2020-08-08"), pd.Timestamp("2020-09-19"))
    for (tr, va), (_, later_va) in zip(folds[1:], folds[:-1], strict=True):
        assert va.sum() == va0.sum()  # as many rows as the split's own validation period
        assert dates[va].max() < dates[later_va].min() - pd.Timedelta(days=6)  # a gap before the later one
        assert dates[tr].max() < dates[va].min() - pd.Timedelta(days=6)  # and before its own
    # an earlier period without positives is not used
    no_early_pos = y & (dates >= pd.Timestamp("2020-06-20")).to_numpy()
    assert len(validation_folds(dates, no_early_pos, split, periods=3)) == 1


@pytest.mark.slow
def test_rounds_are_where_the_mean_auc_of_the_periods_peaks():
    rng = np.random.default_rng(4)
    n = 6000
    y = rng.random(n) < 0.1
    X = np.column_stack([y * 0.6 + rng.normal(0, 1, n), rng.normal(0, 1, n), y * 0.3 + rng.normal(0, 1, n)])
    period = np.arange(n) * 4 // n  # four periods in time order
    folds = [(period < 2, period == 3), (period < 1, period == 2)]
    p = {"objective": "binary", "verbosity": -1, "num_threads": 2, "seed": 0, "deterministic": True,
         "learning_rate": 0.2, "num_leaves": 63, "min_data_in_leaf": 5}
    names = ["a", "b", "c"]
    got = early_stop_on_periods(p, X, y, folds, names, [], num_boost_round=60, early_stopping=60)
    curves = []
    binned = lgb.Dataset(X, y, feature_name=names, free_raw_data=False)  # one binning for every period
    for tr, va in folds:  # each period trained on its own, the AUC of every round
        b = lgb.train(p, binned.subset(np.flatnonzero(tr)), 60)
        curves.append([roc_auc_score(y[va], b.predict(X[va], num_iteration=k)) for k in range(1, 61)])
    mean = np.mean(curves, axis=0)
    assert got.rounds == int(np.argmax(mean)) + 1 and got.rounds < 60
    assert abs(got.auc - mean.max()) < 1e-9
    assert [len(s) for s in got.scores] == [int(folds[0][1].sum()), int(folds[1][1].sum())]
    assert abs(roc_auc_score(got.labels[0], got.scores[0]) - curves[0][got.rounds - 1]) < 1e-9
