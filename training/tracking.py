"""MLflow tracking of a training run: parameters, metrics, evaluation artifacts, plots, and the
model registered with the alias ``challenger``."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from settings import get_settings
from training.data import TrainingSet
from training.fit import DEFAULT_PARAMS, TrainResult, fit_model

#: outcome columns of the labelled rows: not part of a declaration, so not in the input example
_LABEL_COLUMNS = ("y", "hit", "revenue", "selection_source", "selection_probability", "inspected_date")


def train_and_log(ts: TrainingSet, model_name: str, seed: int = 0, num_threads: int = 2,
                  tracking_uri: str | None = None, experiment: str = "riskprof",
                  test_start: str | None = None, **fit_kwargs: Any) -> TrainResult:
    """Fit, then log everything to MLflow, register the model and give it the alias ``challenger``.

    A run that fails part-way is ended with status FAILED, never left looking finished.
    """
    from scoring.registry import configure_mlflow

    mlflow = configure_mlflow(tracking_uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        uri = mlflow.get_tracking_uri()
        art = get_settings().artifact_root if uri.startswith("sqlite:") else None
        mlflow.create_experiment(experiment, artifact_location=art)
    mlflow.set_experiment(experiment)
    run = mlflow.start_run(run_name=f"{model_name}-{ts.label}-seed{seed}")
    try:
        result = fit_model(ts, seed=seed, num_threads=num_threads, test_start=test_start, **fit_kwargs)
        mlflow.log_params(run_params(ts, result, model_name, seed, num_threads, fit_kwargs))
        log_metrics_and_tags(mlflow, ts, result)
        log_evaluation(mlflow, result)
        version = register_challenger(mlflow, ts, result, model_name)
        result.run_id = run.info.run_id
        result.version = version
        result.model_name = model_name
        mlflow.end_run()
        return result
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise


def run_params(ts: TrainingSet, result: TrainResult, model_name: str, seed: int, num_threads: int,
               fit_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The run's parameters: the choices of the fit, what selection decided, the data's size."""
    selection = result.metrics["feature_selection"]
    return {
        "refit": fit_kwargs.get("refit", "all"), "calendar": fit_kwargs.get("calendar", "auto"),
        **{f"{g}_used": result.metrics[f"{g}_used"] for g in selection["must_help"]},
        "select": fit_kwargs.get("select", True),
        "dropped_feature_groups": json.dumps(result.model.metadata["dropped_feature_groups"]),
        "outcome_delay_days": ts.outcome_delay_days, "seed": seed, "num_threads": num_threads, "label": ts.label,
        "model_name": model_name, **{f"lgb_{k}": v for k, v in DEFAULT_PARAMS.items()}, **result.split.as_params(),
        "n_features": len(result.model.feature_names),
        "n_labelled": len(ts.labelled), "n_declarations": len(ts.declarations),
    }


def log_metrics_and_tags(mlflow: Any, ts: TrainingSet, result: TrainResult) -> None:
    """Metrics (test period, baselines, selection bias, timings) and the data's digests as tags."""
    mlflow.log_metrics(logged_test_metrics(result.metrics))
    for name, b in result.baselines.items():
        mlflow.log_metrics(flat_metrics(f"baseline_{name}_", b))
    mlflow.log_metrics({f"selection_{k}": float(v) for k, v in result.selection_bias.items()
                        if isinstance(v, int | float) and v is not None})
    mlflow.log_metrics({f"time_{k}": float(v) for k, v in result.timings.items()})
    digests = {"declarations": dataset_digest(ts.declarations[["declaration_id", "declaration_date",
                                                               "hs_code"]].astype(str)),
               "labelled": dataset_digest(ts.labelled[["declaration_id", "y"]].astype(str))}
    mlflow.set_tags({f"dataset_digest_{k}": v for k, v in digests.items()})
    mlflow.set_tags({"label": ts.label, "sources": json.dumps(ts.sources),
                     FINGERPRINT_TAG: json.dumps(data_fingerprint(ts.declarations, ts.outcomes, ts.seizures,
                                                                  ts.label))})


def log_evaluation(mlflow: Any, result: TrainResult) -> None:
    """Evaluation files (features, metrics, importance, the selection record) and the plots."""
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
    import matplotlib.pyplot as plt

    for fname, fig in plots(result).items():
        mlflow.log_figure(fig, f"plots/{fname}")
        plt.close(fig)  # a long process (tests, retrain, the simulator) would otherwise keep every figure open


def register_challenger(mlflow: Any, ts: TrainingSet, result: TrainResult, model_name: str) -> str:
    """Log the model, register a new version of ``model_name`` and alias it ``challenger``."""
    from scoring.registry import log_risk_model, plain_input_example

    example = plain_input_example(ts.labelled.drop(columns=[c for c in _LABEL_COLUMNS if c in ts.labelled.columns]))
    info = log_risk_model(result.model, example)
    mv = mlflow.register_model(info.model_uri, model_name)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(model_name, "challenger", mv.version)
    client.set_model_version_tag(model_name, mv.version, "label", ts.label)
    client.set_model_version_tag(model_name, mv.version, "test_precision_at_5",
                                 str(result.metrics["precision_at"]["5"]))
    return str(mv.version)


def dataset_digest(frame: pd.DataFrame) -> str:
    h = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


#: the run tag holding :func:`data_fingerprint` (JSON) of the data a model was trained (or refreshed) from
FINGERPRINT_TAG = "data_fingerprint"
#: the fingerprint's parts that must be equal for two data sets to be the same
FINGERPRINT_PARTS = ("label", "declarations", "outcomes", "seizures")


def _canonical(column: pd.Series) -> pd.Series:
    """One dtype per kind of value, so that the same values hash the same whichever reader built the
    frame (a file, the serving store, a concatenation of both): numbers and booleans as float, dates as
    nanoseconds, everything else as text; missing values alike."""
    kind = pd.api.types.infer_dtype(column, skipna=True)
    if kind in ("boolean", "integer", "floating", "mixed-integer-float", "decimal"):
        return pd.to_numeric(column.astype(object).where(column.notna(), None), errors="coerce").astype("float64")
    if kind in ("datetime64", "datetime", "date"):
        return pd.Series(pd.to_datetime(column).to_numpy(dtype="datetime64[ns]").view("int64"), index=column.index)
    return column.astype("string")


def content_digest(frame: pd.DataFrame | None, key: str) -> str | None:
    """A digest of every value of ``frame`` (rows in ``key`` order, columns by name): equal for equal
    content, whatever the row order, column order or dtypes of the frame. None for no frame."""
    if frame is None:
        return None
    rows = frame.sort_values(key, kind="stable") if key in frame.columns else frame
    canon = pd.DataFrame({c: _canonical(rows[c]) for c in sorted(map(str, rows.columns))})
    h = hashlib.sha256(",".join(canon.columns).encode())
    h.update(pd.util.hash_pandas_object(canon, index=False).to_numpy().tobytes())
    return h.hexdigest()[:32]


def _last_day(frame: pd.DataFrame | None, column: str) -> str | None:
    if frame is None or column not in frame.columns or not len(frame):
        return None
    last = pd.to_datetime(frame[column]).max()
    return None if pd.isna(last) else str(last.date())


def data_fingerprint(declarations: pd.DataFrame, outcomes: pd.DataFrame, seizures: pd.DataFrame | None,
                     label: str) -> dict[str, Any]:
    """What a model learned from, to tell later whether anything is new: the label, a digest of every
    declaration, outcome and seizure (:func:`content_digest`), and for people the counts and last days
    (declaration date, inspection date, seizure event date)."""
    return {"label": label,
            "declarations": content_digest(declarations, "declaration_id"),
            "outcomes": content_digest(outcomes, "declaration_id"),
            "seizures": content_digest(seizures, "seizure_id"),
            **data_extent(declarations, outcomes, seizures)}


def data_extent(declarations: pd.DataFrame, outcomes: pd.DataFrame, seizures: pd.DataFrame | None) -> dict[str, Any]:
    """How many declarations, outcomes and seizures, and the last day of each (declaration date, inspection
    date, seizure event date; None when there are none)."""
    return {"n_declarations": len(declarations), "n_outcomes": len(outcomes),
            "n_seizures": None if seizures is None else len(seizures),
            "declarations_end": _last_day(declarations, "declaration_date"),
            "outcomes_end": _last_day(outcomes, "inspected_date"),
            "seizures_end": _last_day(seizures, "event_date")}


#: keys of the test metrics that are logged by part (seen / novel rows), not as one nested dict
_PARTS = ("seen", "novel", "shares", "positive_shares", "novelty")


def logged_test_metrics(m: dict[str, Any]) -> dict[str, float]:
    """The test period's metrics as MLflow metrics: all rows as ``test_…``, the seen and novel rows as
    ``test_seen_…`` and ``test_novel_…``, each part's share of the rows and of the positives as
    ``test_seen_share`` / ``test_seen_positive_share`` (and novel)."""
    out = flat_metrics("test_", {k: v for k, v in m.items() if k not in _PARTS})
    for part in ("seen", "novel"):
        if m.get(part) is not None:
            out.update(flat_metrics(f"test_{part}_", m[part]))
        if "shares" in m:
            out[f"test_{part}_share"] = float(m["shares"][part])
            out[f"test_{part}_positive_share"] = float(m["positive_shares"][part])
    if "novelty" in m:
        out["test_novelty_history_rows"] = float(m["novelty"]["history_rows"])
    return out


def flat_metrics(prefix: str, m: dict[str, Any]) -> dict[str, float]:
    """Numbers of a metrics dict (one level of nesting, e.g. ``precision_at``) as flat MLflow metrics."""
    out: dict[str, float] = {}
    for k, v in m.items():
        if isinstance(v, dict) and k != "calibration":
            for kk, vv in v.items():
                if isinstance(vv, int | float) and vv is not None:
                    out[f"{prefix}{k}_{kk}"] = float(vv)
        elif isinstance(v, int | float) and v is not None and not isinstance(v, bool):
            out[f"{prefix}{k}"] = float(v)
    return out


def plots(result: TrainResult) -> dict[str, Any]:
    """Calibration, precision at inspection rate (with the baselines) and feature importance."""
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
