"""Model life cycle after training: evaluate, promote challenger → champion, refresh features."""

from __future__ import annotations

import copy
import json
import tempfile
from dataclasses import dataclass
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
from training.data import TrainingError, TrainingSet, load_training_set
from training.metrics import ranking_metrics


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


@dataclass
class PromotionDecision:
    promoted: bool
    forced: bool
    challenger_version: str
    champion_version: str | None
    rate: float
    challenger_precision: float | None
    champion_precision: float | None
    period: list[str] | None
    message: str


def _run_sources(client: Any, run_id: str | None) -> dict[str, list[str]]:
    if not run_id:
        return {}
    tags = client.get_run(run_id).data.tags
    return json.loads(tags.get("sources", "{}"))


def promote(name: str, rate: float = 5.0, force: bool = False, ts: TrainingSet | None = None) -> PromotionDecision:
    """Make the challenger the champion if it is at least as good on the most recent labelled period
    (precision at ``rate`` % inspected). Both models score the same rows: by default the test
    period of the challenger's own training data."""
    mlflow = configure_mlflow()
    client = mlflow.MlflowClient()
    challenger = load_risk_model(f"models:/{name}@challenger")
    try:
        champion: LoadedModel | None = load_risk_model(f"models:/{name}@champion")
    except Exception:  # no champion yet (MLflow raises RestException for a missing alias)
        champion = None
    key = f"{rate:g}"
    period = challenger.model.metadata.get("test_period")
    ch_p = cp_p = None
    if champion is not None and champion.version == challenger.version:
        return PromotionDecision(False, force, challenger.version, champion.version, rate, None, None, period,
                                 f"version {challenger.version} is already the champion")
    if champion is not None:
        if ts is None:
            sources = _run_sources(client, challenger.run_id)
            if not sources.get("declarations"):
                raise TrainingError("the challenger's run records no training sources; pass --declarations")
            first = {k: (v[0] if v else None) for k, v in sources.items()}
            ts = load_training_set(sources["declarations"], seizures=first.get("seizures"),
                                   outcomes=first.get("outcomes"), mapping=first.get("mapping"),
                                   label=challenger.model.metadata.get("label"))
        m_cp = evaluate_model(champion, ts, tuple(period) if period else None)
        logged = challenger.model.metadata.get("metrics", {}).get("precision_at", {})
        if challenger.model.metadata.get("test_period_in_final_fit") and key in logged:
            # the deployed challenger was refitted on that period: use the precision its held-out
            # twin (same recipe, trained before the period) reached there
            ch_p = float(logged[key])
        else:
            ch_p = evaluate_model(challenger, ts, tuple(period) if period else None)["precision_at"][key]
        cp_p = m_cp["precision_at"][key]
        better = ch_p >= cp_p
    else:
        better = True
    if not better and not force:
        return PromotionDecision(
            False, False, challenger.version, champion.version if champion else None, rate, ch_p, cp_p, period,
            f"refused: challenger v{challenger.version} precision@{key}% = {ch_p:.4f} < champion "
            f"v{champion.version if champion else '-'} precision@{key}% = {cp_p:.4f} on {period}; use --force to override")
    client.set_registered_model_alias(name, "champion", challenger.version)
    client.set_model_version_tag(name, challenger.version, "promoted", "forced" if (force and not better) else "checked")
    if ch_p is not None:
        client.set_model_version_tag(name, challenger.version, f"promotion_precision_at_{key}", f"{ch_p:.4f}")
    if champion is not None:
        client.set_model_version_tag(name, champion.version, "replaced_by", challenger.version)
    how = "forced" if (force and not better) else "promoted"
    detail = (f" (precision@{key}%: challenger {ch_p:.4f} vs champion {cp_p:.4f} on {period})"
              if ch_p is not None else " (no champion before)")
    return PromotionDecision(True, force and not better, challenger.version,
                             champion.version if champion else None, rate, ch_p, cp_p, period,
                             f"{how}: v{challenger.version} is now champion of {name}{detail}")


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
