"""Fitting: point-in-time features, LightGBM early-stopped on validation periods, calibration, the
test-period metrics and the deployed model."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from features import FeaturePipeline, History, object_array, split_extras
from scoring.model import Calibrator, RiskModel
from training.baselines import baseline_metrics
from training.data import TimeSplit, TrainingSet, temporal_split, validation_folds
from training.early_stopping import ValidationFit, early_stop_on_periods
from training.metrics import calibration_curve, ipw_hit_rate
from training.novelty import seen_mask, split_metrics
from training.selection import select_feature_groups

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 50,
    "cat_l2": 20,
    "min_data_per_group": 200,  # high-cardinality categories (offices, headings) overfit otherwise
    "max_cat_to_onehot": 8,
    "metric": "auc",  # early stopping on ranking quality: logloss stops far too early for rare labels
    "verbosity": -1,
}
REFITS = ("none", "train+valid", "all")


@dataclass
class TrainResult:
    model: RiskModel
    split: TimeSplit
    # test-period metrics of the LightGBM model: of all rows (top-level keys), of the rows whose
    # consignment profile occurs before the test period ("seen") and of the others ("novel")
    metrics: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    selection_bias: dict[str, Any]
    importance: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    version: str | None = None
    model_name: str | None = None


class Rows(NamedTuple):
    """Masks of the labelled rows by period."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


@dataclass
class FeatureData:
    """The labelled rows as features: the fitted pipeline, its input columns, every feature it computed
    (``feats``; the rule baseline reads them), the model's matrix ``X`` and the labels."""

    pipe: FeaturePipeline
    cols: dict[str, np.ndarray]
    feats: dict[str, np.ndarray]
    X: np.ndarray
    y: np.ndarray

    @property
    def names(self) -> list[str]:
        return self.pipe.feature_names_

    def without(self, dropped: list[str]) -> FeatureData:
        """The same rows without the ``dropped`` groups (the fitted pipeline gives exactly the kept
        columns, in order)."""
        if not dropped:
            return self
        pipe = self.pipe.without(dropped)
        keep = [self.names.index(n) for n in pipe.feature_names_]
        assert keep == sorted(keep), "selected columns out of order"
        return replace(self, pipe=pipe, X=self.X[:, keep])


def lightgbm_params(params: dict[str, Any] | None, num_threads: int, seed: int) -> dict[str, Any]:
    return {**DEFAULT_PARAMS, **(params or {}), "num_threads": num_threads, "seed": seed,
            "deterministic": True, "force_row_wise": True}


def fit_model(ts: TrainingSet, seed: int = 0, num_threads: int = 2, params: dict[str, Any] | None = None,
              num_boost_round: int = 1000, early_stopping: int = 100, test_start: str | None = None,
              gap_days: int = 7, refit: str = "all", calendar: str = "auto", select: bool = True) -> TrainResult:
    """Fit features + LightGBM + calibration on a time split; evaluate on the test period.

    ``refit``: ``none`` keeps the early-stopped booster (train period only); ``train+valid`` refits
    on train + validation; ``all`` (default) also fits the deployed model on every labelled row after
    the test-period metrics were taken from the ``train+valid`` model. ``calendar``: ``auto`` keeps
    the families that must help (the calendar) only if they raise validation AUC; ``on`` / ``off``
    force them. ``select``: drop every other feature group (family, or one extra column) whose removal
    raises validation AUC (see :func:`~training.selection.select_feature_groups`). ``early_stopping=0``
    trains exactly ``num_boost_round`` rounds (a model of fixed size, e.g. for benchmarks).
    """
    if refit not in REFITS:
        raise ValueError(f"refit must be none, train+valid or all, got {refit!r}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    lab = ts.labelled
    split = temporal_split(lab["declaration_date"], gap_days=gap_days, test_start=test_start)
    rows = Rows(*split.masks(lab["declaration_date"]))
    history = ts.history  # one History: its event arrays are built once and shared by every fit below
    data = build_features(ts, history, rows.train)
    timings["features_s"] = time.perf_counter() - t0
    timings["feature_rows_per_s"] = len(lab) / max(timings["features_s"], 1e-9)

    p = lightgbm_params(params, num_threads, seed)
    folds = validation_folds(lab["declaration_date"], data.y, split)

    def early_stopped(Xm: np.ndarray, names: list[str], cats: list[str]) -> ValidationFit:
        return early_stop_on_periods(p, Xm, data.y, folds, names, cats, num_boost_round, early_stopping)

    t1 = time.perf_counter()
    chosen, selection = select_feature_groups(data.X, data.names, data.pipe, calendar=calendar, select=select,
                                              fit=early_stopped, seed=seed)
    data = data.without(selection["dropped"])
    # (LightGBM's own names have spaces replaced: compare counts, not names)
    assert len(data.names) == chosen.booster.num_feature(), "selected columns out of order"
    timings["fit_s"] = time.perf_counter() - t1
    timings["fit_rows_per_s"] = int(rows.train.sum()) / max(timings["fit_s"], 1e-9)

    # calibration is fitted on out-of-sample validation scores of the early-stopped booster
    # (the validation period's scores: fold 0 is the split's own)
    calibrator = isotonic_calibrator(chosen.scores[0], data.y[rows.valid])
    booster = held_out_booster(chosen, data, rows, p, refit, timings)
    p_test = calibrator(np.asarray(booster.predict(data.X[rows.test], num_threads=num_threads)))
    model = deployed_model(data, booster, calibrator, history, ts, rows, p, chosen.rounds, refit, timings)

    revenue = revenue_in(lab, rows.test)
    seen, novelty = seen_before_test(lab, split, rows.test)
    metrics = evaluation_metrics(data.y[rows.test], p_test, revenue, chosen.rounds, selection, seen)
    metrics["novelty"] = novelty
    baselines = baseline_metrics(data.feats, data.cols, data.X, data.names, data.pipe.categorical_, data.y,
                                 rows.train, rows.test, revenue)
    selection_bias = ipw_hit_rate(data.y, object_array(lab["selection_source"]),
                                  pd.to_numeric(lab["selection_probability"], errors="coerce")
                                  .to_numpy(dtype=np.float64))
    importance = feature_importance(model.booster, data)
    model.metadata = model_metadata(ts, history, split, folds, refit, metrics, selection, data.names)
    timings["total_s"] = time.perf_counter() - t0
    return TrainResult(model, split, metrics, baselines, selection_bias, importance, timings)


def build_features(ts: TrainingSet, history: History, train_rows: np.ndarray) -> FeatureData:
    """Every feature group for the labelled rows; vocabularies learned from the training rows."""
    lab = ts.labelled
    numeric, categorical = split_extras(lab, ts.extra_columns)
    pipe = FeaturePipeline(extra_numeric=numeric, extra_categorical=categorical)
    pipe.fit(history, lab[train_rows])
    cols = pipe.columns(lab)
    feats = pipe.transform_columns(cols)
    return FeatureData(pipe, cols, feats, pipe.matrix(feats), lab["y"].to_numpy(dtype=bool))


def isotonic_calibrator(raw: np.ndarray, y: np.ndarray) -> Calibrator:
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw, y)
    return Calibrator(np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_))


def train_booster(p: dict[str, Any], data: FeatureData, rows: np.ndarray | slice, rounds: int) -> lgb.Booster:
    return lgb.train(p, lgb.Dataset(data.X[rows], label=data.y[rows], feature_name=data.names,
                                    categorical_feature=data.pipe.categorical_), num_boost_round=rounds)


def held_out_booster(chosen: ValidationFit, data: FeatureData, rows: Rows, p: dict[str, Any], refit: str,
                        timings: dict[str, float]) -> lgb.Booster:
    """The booster the test-period metrics come from: it has never seen the test period."""
    if refit == "none":
        return chosen.booster
    # the most recent labelled weeks matter most: refit on train + validation with the number of
    # rounds early stopping chose; the test period stays unseen for the metrics
    t = time.perf_counter()
    booster = train_booster(p, data, rows.train | rows.valid, chosen.rounds)
    timings["refit_s"] = time.perf_counter() - t
    return booster


def deployed_model(data: FeatureData, booster: lgb.Booster, calibrator: Calibrator, history: History,
                   ts: TrainingSet, rows: Rows, p: dict[str, Any], rounds: int, refit: str,
                   timings: dict[str, float]) -> RiskModel:
    """The model to register; with ``refit="all"`` the same recipe on every labelled row (vocabularies
    included), while the metrics stay those of the model that had not seen the test period."""
    final, final_booster = data, booster
    if refit == "all":
        t = time.perf_counter()
        pipe = data.pipe.spec_without([]).fit(history, ts.labelled)
        feats = pipe.transform_columns(pipe.columns(ts.labelled))
        final = replace(data, pipe=pipe, feats=feats, X=pipe.matrix(feats))
        final_booster = train_booster(p, final, slice(None), rounds)
        timings["refit_all_s"] = time.perf_counter() - t
    model = RiskModel(final.pipe, final_booster, calibrator, np.zeros(0), num_threads=1)
    recent = final.X[rows.valid | rows.test]
    model.reference_scores = np.sort(calibrator(np.asarray(final_booster.predict(
        recent, num_threads=p["num_threads"]))))
    return model


def revenue_in(lab: pd.DataFrame, test: np.ndarray) -> np.ndarray | None:
    """The test rows' revenue when the data records any (metrics then also weigh revenue found)."""
    revenue = lab["revenue"].to_numpy(dtype=np.float64) if "revenue" in lab else None
    return revenue[test] if revenue is not None and np.nansum(revenue) > 0 else None


def seen_before_test(lab: pd.DataFrame, split: TimeSplit, test: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Per test row: does its consignment profile occur among the labelled rows before the test period
    (everything the held-out model and its history features could have learned an outcome from)? With
    a record of that history."""
    history = lab[(lab["declaration_date"] < split.test_start).to_numpy()]
    dates = history["declaration_date"]
    info = {"profile": "HS6 x origin x departure country x declared value level", "history_rows": len(history),
            "history_period": [str(dates.min().date()), str(dates.max().date())] if len(history) else None}
    return seen_mask(history, lab[test]), info


def evaluation_metrics(y: np.ndarray, p_test: np.ndarray, revenue: np.ndarray | None, rounds: int,
                       selection: dict[str, Any], seen: np.ndarray) -> dict[str, Any]:
    """Test-period metrics: all rows at the top level, ``seen`` / ``novel`` rows (see
    :func:`~training.novelty.split_metrics`), then calibration and what selection decided."""
    metrics = split_metrics(y, p_test, revenue, seen)
    metrics["auc_raw"] = metrics["auc"]
    metrics["calibration"] = calibration_curve(y, p_test)
    metrics["best_iteration"] = rounds
    for g in selection["must_help"]:  # (the calendar) whether it stayed, and the figures that decided
        metrics[f"{g}_used"] = g not in selection["dropped"]
        metrics.update({k: selection[k] for k in (f"valid_auc_with_{g}", f"valid_auc_without_{g}") if k in selection})
    metrics["feature_selection"] = selection
    return metrics


def feature_importance(booster: lgb.Booster, data: FeatureData) -> pd.DataFrame:
    return pd.DataFrame({"feature": data.names, "family": [data.pipe.family_of_[n] for n in data.names],
                         "gain": booster.feature_importance("gain")}).sort_values("gain", ascending=False,
                                                                                 ignore_index=True)


def model_metadata(ts: TrainingSet, history: History, split: TimeSplit, folds: list[tuple[np.ndarray, np.ndarray]],
                   refit: str, metrics: dict[str, Any], selection: dict[str, Any],
                   names: list[str]) -> dict[str, Any]:
    """What the registered model says about itself: label, periods, choices and test figures."""
    dates = ts.labelled["declaration_date"]
    return {
        "label": ts.label,
        "training_period": [str(dates.min().date()),
                            str((dates.max() if refit == "all" else split.valid_end).date())],
        "refit": refit,
        "outcome_delay_days": int(ts.outcome_delay_days),
        **{f"{g}_used": metrics[f"{g}_used"] for g in selection["must_help"]},
        "dropped_feature_groups": list(selection["dropped"]),
        "test_period_in_final_fit": refit == "all",
        "validation_period": [str(split.valid_start.date()), str(split.valid_end.date())],
        # rounds and feature groups were chosen on these periods (latest first; the first is the above)
        "validation_periods": [[str(dates[v].min().date()), str(dates[v].max().date())] for _, v in folds],
        "test_period": [str(split.test_start.date()), str(dates.max().date())],
        "history_cutoff": str(pd.Timestamp(history.cutoff).date()),  # type: ignore[arg-type]
        "metrics": {k: metrics[k] for k in ("precision_at", "recall_at", "auc", "average_precision", "brier")},
        "features": list(names),
    }
