"""Model life cycle after training: evaluate (all, seen and novel rows), promote challenger → champion
(:mod:`training.promotion`), refresh features."""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.history import History
from scoring.registry import (
    LoadedModel,
    configure_mlflow,
    load_risk_model,
    log_risk_model,
    plain_input_example,
)
from training.data import TrainingError, TrainingSet
from training.novelty import seen_mask, split_metrics
from training.promotion import PromotionDecision, promote, promotion_gate, training_files

PROFILE = "HS6 x origin x departure country x declared value level (one level per factor e)"


def training_history(loaded: LoadedModel, ts: TrainingSet) -> tuple[pd.DataFrame, str]:
    """The labelled rows the model was fitted on (its metadata ``training_period``): those of ``ts``
    when ``ts`` covers the period's start, else those of the model's training files (its run's
    ``sources``). Returns the rows and where they came from."""
    period = loaded.model.metadata.get("training_period")
    if not period:
        return ts.labelled.iloc[:0], "none: the model records no training period"
    start, end = pd.Timestamp(period[0]), pd.Timestamp(period[1])

    def within(lab: pd.DataFrame) -> pd.DataFrame:
        d = lab["declaration_date"]
        return lab[(d >= start) & (d <= end)]

    rows = within(ts.labelled)
    # a week's slack: the earliest labelled day of the evaluated files may follow the period's first day
    if not rows.empty and rows["declaration_date"].min() <= start + pd.Timedelta(days=7):
        return rows, "the evaluated files"
    notes: list[str] = []
    files = training_files(configure_mlflow().MlflowClient(), loaded, notes)
    if files is not None:
        return within(files.labelled), "the model's training files"
    return rows, f"the evaluated files, part of the training period only ({'; '.join(notes)})"


def evaluate_model(loaded: LoadedModel, ts: TrainingSet, period: tuple[str, str] | None = None,
                   history: pd.DataFrame | None = None) -> dict[str, Any]:
    """Score the labelled rows with the model (its own feature snapshot) and compute metrics: of all
    rows (top-level keys), of the rows whose consignment profile occurs in the model's training
    history (``seen``) and of the others (``novel``), with each part's share (``shares``).

    ``history``: the labelled rows the model was fitted on (default: :func:`training_history`).
    """
    lab = ts.labelled
    if period is not None:
        d = lab["declaration_date"]
        lab = lab[(d >= pd.Timestamp(period[0])) & (d <= pd.Timestamp(period[1]))]
        if lab.empty:
            raise TrainingError(f"no labelled rows in the period {period[0]} .. {period[1]}")
    risk = loaded.model.predict(lab)
    y = lab["y"].to_numpy(dtype=bool)
    revenue = lab["revenue"].to_numpy(dtype=np.float64) if "revenue" in lab else None
    has_rev = revenue is not None and np.nansum(revenue) > 0
    source = "given"
    if history is None:
        history, source = training_history(loaded, ts)
    metrics = split_metrics(y, risk, revenue if has_rev else None, seen_mask(history, lab))
    metrics["model"] = {"name": loaded.name, "version": loaded.version, "alias": loaded.alias, "uri": loaded.uri}
    metrics["label"] = ts.label
    metrics["period"] = [str(lab["declaration_date"].min().date()), str(lab["declaration_date"].max().date())]
    metrics["novelty"] = {"profile": PROFILE, "history_rows": len(history), "history_source": source,
                          "history_period": ([str(history["declaration_date"].min().date()),
                                              str(history["declaration_date"].max().date())]
                                             if len(history) else None)}
    return metrics


def require_declarations(declarations: pd.DataFrame) -> None:
    """A refresh's declarations are not empty (:class:`TrainingError`)."""
    if not len(declarations):
        raise TrainingError("no declarations to refresh from: a refresh rebuilds the feature snapshot from every "
                            "known declaration (pass them all with --declarations). Nothing was registered")


def check_refresh_history(history: History, snapshot_cutoff: Any) -> None:
    """A refresh rebuilds the snapshot from every known declaration: a history without declarations, or
    one that ends before the snapshot the model already has, would make it forget (and the alias
    would move to that version). Raises :class:`TrainingError`; nothing is registered."""
    require_declarations(history.declarations)
    if snapshot_cutoff is not None and pd.notna(snapshot_cutoff) and history.cutoff is not None \
            and pd.Timestamp(history.cutoff) < pd.Timestamp(snapshot_cutoff):
        raise TrainingError(f"the history ends on {pd.Timestamp(history.cutoff).date()}, before the model's own "
                            f"feature snapshot (up to {pd.Timestamp(snapshot_cutoff).date()}): a refresh must not "
                            "forget what the model knows; pass every known declaration and outcome. Nothing was "
                            "registered")


def refresh_features(model_uri: str, history: History, alias: str | None = None) -> tuple[str, str]:
    """Rebuild a model's feature snapshot from a newer history; register it as a new version
    (same booster and calibration) and point ``alias`` (default: the alias refreshed) at it."""
    mlflow = configure_mlflow()
    loaded = load_risk_model(model_uri)
    check_refresh_history(history, getattr(loaded.model.pipeline, "cutoff_", None))
    model = copy.deepcopy(loaded.model)
    model.pipeline.refresh(history)
    model.metadata = {**model.metadata, "history_cutoff": str(pd.Timestamp(history.cutoff).date()),  # type: ignore[arg-type]
                      "refreshed_from_version": loaded.version}
    target_alias = alias or loaded.alias
    mlflow.set_experiment("riskprof")
    with mlflow.start_run(run_name=f"refresh-features-{loaded.name}-v{loaded.version}") as run:
        mlflow.log_params({"refreshed_from": loaded.uri, "history_cutoff": model.metadata["history_cutoff"],
                           "n_declarations": len(history.declarations), "n_outcomes": len(history.outcomes)})
        example = plain_input_example(history.declarations.head(3))
        info = log_risk_model(model, example)
        mv = mlflow.register_model(info.model_uri, loaded.name)
        client = mlflow.MlflowClient()
        client.set_model_version_tag(loaded.name, mv.version, "refreshed_from", loaded.version)
        if target_alias:
            client.set_registered_model_alias(loaded.name, target_alias, mv.version)
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "snapshot.json"
            p.write_text(json.dumps(model.metadata, indent=1, default=str))
            mlflow.log_artifact(str(p), artifact_path="evaluation")
        return str(mv.version), run.info.run_id


__all__ = ["PromotionDecision", "evaluate_model", "promote", "promotion_gate", "refresh_features",
           "training_history"]
