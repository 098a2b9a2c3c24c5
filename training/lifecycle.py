"""Model life cycle after training: evaluate, promote challenger → champion (:mod:`training.promotion`),
refresh features."""

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
from training.metrics import ranking_metrics
from training.promotion import PromotionDecision, promote, promotion_gate


def evaluate_model(loaded: LoadedModel, ts: TrainingSet, period: tuple[str, str] | None = None) -> dict[str, Any]:
    """Score the labelled rows with the model (its own feature snapshot) and compute metrics."""
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
    metrics = ranking_metrics(y, risk, revenue if has_rev else None)
    metrics["model"] = {"name": loaded.name, "version": loaded.version, "alias": loaded.alias, "uri": loaded.uri}
    metrics["label"] = ts.label
    metrics["period"] = [str(lab["declaration_date"].min().date()), str(lab["declaration_date"].max().date())]
    return metrics


def refresh_features(model_uri: str, history: History, alias: str | None = None) -> tuple[str, str]:
    """Rebuild a model's feature snapshot from a newer history; register it as a new version
    (same booster and calibration) and point ``alias`` (default: the alias refreshed) at it."""
    mlflow = configure_mlflow()
    loaded = load_risk_model(model_uri)
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


__all__ = ["PromotionDecision", "evaluate_model", "promote", "promotion_gate", "refresh_features"]
