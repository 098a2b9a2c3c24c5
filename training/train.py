"""Training: point-in-time features, LightGBM with early stopping, calibration, baselines, MLflow."""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from features._columns import object_array
from features.extra import split_extras
from features.pipeline import FeaturePipeline
from scoring.model import Calibrator, RiskModel
from training.data import TimeSplit, TrainingError, TrainingSet, temporal_split, validation_folds
from training.metrics import calibration_curve, ipw_hit_rate, ranking_metrics, weighted_auc

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


@dataclass
class TrainResult:
    model: RiskModel
    split: TimeSplit
    metrics: dict[str, Any]  # test-period metrics of the LightGBM model
    baselines: dict[str, dict[str, Any]]
    selection_bias: dict[str, Any]
    importance: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    version: str | None = None
    model_name: str | None = None


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


MIN_AUC_GAIN = 0.0005  # a group is dropped only if validation AUC without it is higher by this much…
DROP_CONFIDENCE = 0.9  # …in at least this share of paired bootstrap resamples of the validation period
BOOTSTRAP_RESAMPLES = 200
MAX_SELECTION_ROUNDS = 3  # backward elimination: groups are re-tested after each round's removals
MIN_FAMILIES = 3  # an explanation names at least three families (issue 4), so at least three stay


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


def select_feature_groups(X: np.ndarray, names: list[str], pipe: FeaturePipeline, calendar: str, select: bool,
                          fit: Callable[[np.ndarray, list[str], list[str]], ValidationFit], seed: int = 0
                          ) -> tuple[ValidationFit, dict[str, Any]]:
    """Keep a feature group only where it helps, judged on the validation period.

    Every group (a family, or one extra column of a mapping) is left out in turn and the model
    early-stopped again. The calendar family must raise validation AUC to stay (``calendar="auto"``).
    Another group goes only when leaving it out raises validation AUC by at least ``MIN_AUC_GAIN``
    and does so in at least ``DROP_CONFIDENCE`` of paired bootstrap resamples of the validation rows
    (a small validation period rarely removes anything). Validation AUC is the mean over the
    validation periods, and a resample draws the rows of every period. The groups that go are then
    left out together, and that model is kept if it is at least as good as the best single removal
    (otherwise only that one group goes). At least ``MIN_FAMILIES`` families always stay, so every
    explanation can name three. ``fit(X, names, categorical)`` returns the columns' early-stopped
    :class:`ValidationFit`. Returns the chosen fit and the record of the decision.
    """
    groups = pipe.groups()

    def families_left(gone: Sequence[str]) -> int:
        return len({pipe.family_of_[n] for g, members in groups.items() if g not in gone for n in members})

    rng = np.random.default_rng(seed)
    weights: list[np.ndarray] = []

    def without(gone: Sequence[str]) -> tuple[ValidationFit, float, np.ndarray]:
        cols = [j for j, n in enumerate(names) if not any(n in groups[g] for g in gone)]
        kept = [names[j] for j in cols]
        f = fit(X[:, cols], kept, [c for c in pipe.categorical_ if c in kept])
        if not weights:  # the same resamples for every configuration: paired comparisons
            weights.extend(rng.poisson(1.0, size=(BOOTSTRAP_RESAMPLES, len(yv))) for yv in f.labels)
        boot = np.mean([weighted_auc(yv, sv, w) for yv, sv, w in zip(f.labels, f.scores, weights, strict=True)],
                       axis=0)
        return f, f.auc, boot

    forced = ["calendar"] if calendar == "off" and "calendar" in groups else []
    current, current_auc, current_boot = without(forced)
    record: dict[str, Any] = {"valid_auc_all": current_auc, "rounds": [], "dropped": list(forced)}
    dropped = list(forced)
    for _ in range(MAX_SELECTION_ROUNDS):
        candidates = [g for g in groups if g not in dropped and (select or g == "calendar")
                      and not (g == "calendar" and calendar == "on")]
        candidates = [g for g in candidates if families_left([*dropped, g]) >= MIN_FAMILIES]
        if not candidates:
            break
        results = {g: without([*dropped, g]) for g in candidates}
        rnd: dict[str, Any] = {"valid_auc": current_auc, "valid_auc_without": {}, "confidence_without": {}}
        for g, (_, auc, boot) in results.items():
            rnd["valid_auc_without"][g] = auc
            rnd["confidence_without"][g] = float(np.nanmean(boot > current_boot))
        if "calendar" in results and calendar == "auto":
            record["valid_auc_with_calendar"] = current_auc
            record["valid_auc_without_calendar"] = results["calendar"][1]
        drop = [g for g, (_, auc, _) in results.items()
                if (auc >= current_auc if g == "calendar" else
                    auc >= current_auc + MIN_AUC_GAIN and rnd["confidence_without"][g] >= DROP_CONFIDENCE)]
        record["rounds"].append(rnd)
        if not drop:
            break
        best_single = max(drop, key=lambda g: results[g][1])
        chosen = results[best_single]
        if families_left([*dropped, *drop]) < MIN_FAMILIES:
            drop = [best_single]  # reasons need families to name
        if len(drop) > 1:
            together = without([*dropped, *drop])
            rnd["valid_auc_without_dropped"] = together[1]
            if together[1] >= chosen[1]:
                chosen = together
            else:
                drop = [best_single]
        rnd["dropped"] = drop
        dropped += drop
        current, current_auc, current_boot = chosen
    # first-round figures, as the calendar rule and the run's metrics report them
    record["valid_auc_without"] = record["rounds"][0]["valid_auc_without"] if record["rounds"] else {}
    record["confidence_without"] = record["rounds"][0]["confidence_without"] if record["rounds"] else {}
    record["dropped"] = dropped
    record["valid_auc_selected"] = current_auc
    return current, record


def dataset_digest(frame: pd.DataFrame) -> str:
    h = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def fit_model(ts: TrainingSet, seed: int = 0, num_threads: int = 2, params: dict[str, Any] | None = None,
              num_boost_round: int = 1000, early_stopping: int = 100, test_start: str | None = None,
              gap_days: int = 7, refit: str = "all", calendar: str = "auto", select: bool = True) -> TrainResult:
    """Fit features + LightGBM + calibration on a time split; evaluate on the test period.

    ``refit``: ``none`` keeps the early-stopped booster (train period only); ``train+valid`` refits
    on train + validation; ``all`` (default) also fits the deployed model on every labelled row after
    the test-period metrics were taken from the ``train+valid`` model. ``calendar``: ``auto`` keeps
    the calendar family only if it raises validation AUC; ``on`` / ``off`` force it. ``select``: drop
    every other feature group (family, or one extra column) whose removal raises validation AUC
    (see :func:`select_feature_groups`). ``early_stopping=0`` trains exactly ``num_boost_round`` rounds
    (a model of fixed size, e.g. for benchmarks).
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    lab = ts.labelled
    split = temporal_split(lab["declaration_date"], gap_days=gap_days, test_start=test_start)
    tr, va, te = split.masks(lab["declaration_date"])
    numeric, categorical = split_extras(lab, ts.extra_columns)
    pipe = FeaturePipeline(extra_numeric=numeric, extra_categorical=categorical)
    history = ts.history  # one History: its event arrays are built once and shared by every fit below
    pipe.fit(history, lab[tr])
    cols = pipe.columns(lab)
    feats = pipe.transform_columns(cols)
    X = pipe.matrix(feats)
    y = lab["y"].to_numpy(dtype=bool)
    timings["features_s"] = time.perf_counter() - t0
    timings["feature_rows_per_s"] = len(lab) / max(timings["features_s"], 1e-9)

    p = {**DEFAULT_PARAMS, **(params or {}), "num_threads": num_threads, "seed": seed,
         "deterministic": True, "force_row_wise": True}

    folds = validation_folds(lab["declaration_date"], y, split)

    def early_stopped(Xm: np.ndarray, names: list[str], cats: list[str]) -> ValidationFit:
        return early_stop_on_periods(p, Xm, y, folds, names, cats, num_boost_round, early_stopping)

    t1 = time.perf_counter()
    names = pipe.feature_names_
    chosen, selection = select_feature_groups(X, names, pipe, calendar=calendar, select=select,
                                              fit=early_stopped, seed=seed)
    booster = chosen.booster
    dropped = selection["dropped"]
    calendar_check: dict[str, Any] = {k: selection[k] for k in ("valid_auc_with_calendar", "valid_auc_without_calendar")
                      if k in selection}
    use_calendar = "calendar" not in dropped
    if dropped:
        # the fitted pipeline without the dropped groups gives exactly the kept columns, in order
        pipe = pipe.without(dropped)
        keep = [names.index(n) for n in pipe.feature_names_]
        X, names = X[:, keep], pipe.feature_names_
        # (LightGBM's own names have spaces replaced: compare positions, not names)
        assert keep == sorted(keep) and len(keep) == booster.num_feature(), "selected columns out of order"
    timings["fit_s"] = time.perf_counter() - t1
    timings["fit_rows_per_s"] = int(tr.sum()) / max(timings["fit_s"], 1e-9)

    best = chosen.rounds
    raw_valid = chosen.scores[0]  # the validation period's scores (fold 0 is the split's own)
    # calibration is fitted on out-of-sample validation scores of the early-stopped booster
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(raw_valid, y[va])
    calibrator = Calibrator(np.asarray(iso.X_thresholds_), np.asarray(iso.y_thresholds_))
    if refit in ("train+valid", "all"):
        # the most recent labelled weeks matter most: refit on train + validation with the number of
        # rounds early stopping chose; the test period stays unseen for the metrics below
        t2 = time.perf_counter()
        fit_rows = tr | va
        booster = lgb.train(p, lgb.Dataset(X[fit_rows], label=y[fit_rows], feature_name=names,
                                           categorical_feature=pipe.categorical_), num_boost_round=best)
        timings["refit_s"] = time.perf_counter() - t2
    elif refit != "none":
        raise ValueError(f"refit must be none, train+valid or all, got {refit!r}")
    raw_test = np.asarray(booster.predict(X[te], num_threads=num_threads))
    p_test = calibrator(raw_test)
    final_pipe, final_booster, final_X = pipe, booster, X
    if refit == "all":
        # the deployed model: the same recipe on every labelled row (vocabularies included); the
        # metrics above stay those of the model that had not seen the test period
        t3 = time.perf_counter()
        final_pipe = pipe.spec_without([]).fit(history, lab)
        final_X = final_pipe.matrix(final_pipe.transform_columns(final_pipe.columns(lab)))
        final_booster = lgb.train(p, lgb.Dataset(final_X, label=y, feature_name=final_pipe.feature_names_,
                                                 categorical_feature=final_pipe.categorical_),
                                  num_boost_round=best)
        timings["refit_all_s"] = time.perf_counter() - t3
    model = RiskModel(final_pipe, final_booster, calibrator, np.zeros(0), num_threads=1)
    model.reference_scores = np.sort(calibrator(np.asarray(final_booster.predict(final_X[va | te],
                                                                                  num_threads=num_threads))))

    revenue = lab["revenue"].to_numpy(dtype=np.float64) if "revenue" in lab else None
    has_revenue = revenue is not None and np.nansum(revenue) > 0
    rev_te = revenue[te] if has_revenue and revenue is not None else None
    metrics = ranking_metrics(y[te], p_test, rev_te)
    metrics["auc_raw"] = metrics["auc"]
    metrics["calibration"] = calibration_curve(y[te], p_test)
    metrics["best_iteration"] = best
    metrics["calendar_used"] = bool(use_calendar)
    metrics.update(calendar_check)
    metrics["feature_selection"] = selection

    baselines: dict[str, dict[str, Any]] = {}
    rs = rule_score(feats, cols)
    baselines["rules"] = ranking_metrics(y[te], rs[te], rev_te)
    num_idx = [j for j, n in enumerate(names) if n not in pipe.categorical_]
    lr = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                       LogisticRegression(max_iter=300))
    Xn = np.nan_to_num(X[:, num_idx], nan=np.nan, posinf=1e6, neginf=-1e6)
    lr.fit(Xn[tr], y[tr])
    baselines["logistic_regression"] = ranking_metrics(y[te], lr.predict_proba(Xn[te])[:, 1], rev_te)

    src = object_array(lab["selection_source"])
    prob = pd.to_numeric(lab["selection_probability"], errors="coerce").to_numpy(dtype=np.float64)
    selection_bias = ipw_hit_rate(y, src, prob)

    gain = final_booster.feature_importance("gain")
    importance = pd.DataFrame({"feature": names, "family": [pipe.family_of_[n] for n in names],
                               "gain": gain}).sort_values("gain", ascending=False, ignore_index=True)
    model.metadata = {
        "label": ts.label,
        "training_period": [str(lab["declaration_date"].min().date()),
                            str((lab["declaration_date"].max() if refit == "all" else split.valid_end).date())],
        "refit": refit,
        "outcome_delay_days": int(ts.outcome_delay_days),
        "calendar_used": bool(use_calendar),
        "dropped_feature_groups": list(dropped),
        "test_period_in_final_fit": refit == "all",
        "validation_period": [str(split.valid_start.date()), str(split.valid_end.date())],
        # rounds and feature groups were chosen on these periods (latest first; the first is the above)
        "validation_periods": [[str(lab["declaration_date"][v].min().date()), str(lab["declaration_date"][v].max().date())]
                               for _, v in folds],
        "test_period": [str(split.test_start.date()), str(lab["declaration_date"].max().date())],
        "history_cutoff": str(pd.Timestamp(history.cutoff).date()),  # type: ignore[arg-type]
        "metrics": {k: metrics[k] for k in ("precision_at", "recall_at", "auc", "average_precision", "brier")},
        "features": list(names),
    }
    timings["total_s"] = time.perf_counter() - t0
    return TrainResult(model, split, metrics, baselines, selection_bias, importance, timings)


def _flat(prefix: str, m: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for k, v in m.items():
        if isinstance(v, dict) and k != "calibration":
            for kk, vv in v.items():
                if isinstance(vv, int | float) and vv is not None:
                    out[f"{prefix}{k}_{kk}"] = float(vv)
        elif isinstance(v, int | float) and v is not None and not isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
    return out


def _plots(result: TrainResult, y_te: np.ndarray | None = None) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {}
    cal = result.metrics["calibration"]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, max(cal["predicted"] + [0.01])], [0, max(cal["predicted"] + [0.01])], "k:", lw=1)
    ax.plot(cal["predicted"], cal["observed"], "o-")
    ax.set_xlabel("predicted risk")
    ax.set_ylabel("observed hit rate")
    ax.set_title("calibration (test period)")
    figs["calibration.png"] = fig
    fig, ax = plt.subplots(figsize=(4.5, 4))
    rates = list(result.metrics["precision_at"])
    ax.plot(rates, [result.metrics["precision_at"][r] for r in rates], "o-", label="LightGBM")
    for name, b in result.baselines.items():
        ax.plot(rates, [b["precision_at"][r] for r in rates], "s--", label=name)
    ax.set_xlabel("inspection rate (%)")
    ax.set_ylabel("precision")
    ax.legend()
    ax.set_title("precision at inspection rate")
    figs["precision_at_k.png"] = fig
    imp = result.importance.head(20).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.barh(imp["feature"], imp["gain"])
    ax.set_title("feature importance (gain)")
    fig.tight_layout()
    figs["feature_importance.png"] = fig
    return figs


def train_and_log(ts: TrainingSet, model_name: str, seed: int = 0, num_threads: int = 2,
                  tracking_uri: str | None = None, experiment: str = "riskprof",
                  test_start: str | None = None, **fit_kwargs: Any) -> TrainResult:
    """Fit, then log everything to MLflow, register the model and give it the alias ``challenger``.

    A run that fails part-way is ended with status FAILED, never left looking finished.
    """
    from scoring.registry import configure_mlflow, log_risk_model, plain_input_example

    mlflow = configure_mlflow(tracking_uri)
    from riskprof.settings import get_settings

    if mlflow.get_experiment_by_name(experiment) is None:
        uri = mlflow.get_tracking_uri()
        art = get_settings().artifact_root if uri.startswith("sqlite:") else None
        mlflow.create_experiment(experiment, artifact_location=art)
    mlflow.set_experiment(experiment)
    run = mlflow.start_run(run_name=f"{model_name}-{ts.label}-seed{seed}")
    try:
        result = fit_model(ts, seed=seed, num_threads=num_threads, test_start=test_start, **fit_kwargs)
        mlflow.log_params({"refit": fit_kwargs.get("refit", "all"), "calendar": fit_kwargs.get("calendar", "auto"),
                           "calendar_used": result.metrics["calendar_used"], "select": fit_kwargs.get("select", True),
                           "dropped_feature_groups": json.dumps(result.model.metadata["dropped_feature_groups"]),
                           "outcome_delay_days": ts.outcome_delay_days, "seed": seed, "num_threads": num_threads, "label": ts.label, "model_name": model_name,
                           **{f"lgb_{k}": v for k, v in DEFAULT_PARAMS.items()}, **result.split.as_params(),
                           "n_features": len(result.model.feature_names),
                           "n_labelled": len(ts.labelled), "n_declarations": len(ts.declarations)})
        mlflow.log_metrics(_flat("test_", result.metrics))
        for name, b in result.baselines.items():
            mlflow.log_metrics(_flat(f"baseline_{name}_", b))
        mlflow.log_metrics({f"selection_{k}": float(v) for k, v in result.selection_bias.items()
                            if isinstance(v, int | float) and v is not None})
        mlflow.log_metrics({f"time_{k}": float(v) for k, v in result.timings.items()})
        digests = {"declarations": dataset_digest(ts.declarations[["declaration_id", "declaration_date",
                                                                   "hs_code"]].astype(str)),
                   "labelled": dataset_digest(ts.labelled[["declaration_id", "y"]].astype(str))}
        mlflow.set_tags({f"dataset_digest_{k}": v for k, v in digests.items()})
        mlflow.set_tags({"label": ts.label, "sources": json.dumps(ts.sources)})
        with tempfile.TemporaryDirectory() as tmp:
            tmpd = Path(tmp)
            (tmpd / "features.json").write_text(json.dumps({
                "features": result.model.feature_names, "categorical": result.model.pipeline.categorical_,
                "families": result.model.pipeline.family_of_}, indent=1))
            (tmpd / "metrics.json").write_text(json.dumps({"test": result.metrics, "baselines": result.baselines,
                                                           "selection_bias": result.selection_bias}, indent=1,
                                                          default=float))
            result.importance.to_csv(tmpd / "feature_importance.csv", index=False)
            (tmpd / "feature_selection.json").write_text(json.dumps(result.metrics["feature_selection"], indent=1))
            mlflow.log_artifacts(str(tmpd), artifact_path="evaluation")
        for fname, fig in _plots(result).items():
            mlflow.log_figure(fig, f"plots/{fname}")
        example = plain_input_example(ts.labelled.drop(columns=[c for c in ("y", "hit", "revenue",
                                                                            "selection_source",
                                                                            "selection_probability",
                                                                            "inspected_date")
                                                               if c in ts.labelled.columns]))
        info = log_risk_model(result.model, example)
        mv = mlflow.register_model(info.model_uri, model_name)
        client = mlflow.MlflowClient()
        client.set_registered_model_alias(model_name, "challenger", mv.version)
        client.set_model_version_tag(model_name, mv.version, "label", ts.label)
        client.set_model_version_tag(model_name, mv.version, "test_precision_at_5",
                                     str(result.metrics["precision_at"]["5"]))
        result.run_id = run.info.run_id
        result.version = str(mv.version)
        result.model_name = model_name
        mlflow.end_run()
        return result
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise


__all__ = ["TrainResult", "TrainingError", "fit_model", "train_and_log"]
