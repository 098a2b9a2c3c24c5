"""Model life cycle after training: evaluate (all, seen and novel rows), promote challenger → champion
(:mod:`training.promotion`), refresh features."""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable
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
from training.promotion import (
    PromotionDecision,
    promote,
    promotion_gate,
    run_sources,
    run_training_files,
    trained_version,
)

PROFILE = "HS6 x origin x departure country x declared value level (one level per factor e)"


def learned_period(loaded: LoadedModel) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """First and last declaration day of the labelled rows the model learned from: its training period; for
    a refreshed snapshot (``refresh-features``) up to its history cut-off, since its look-ups hold every
    outcome known then (None: no training period recorded)."""
    period = loaded.model.metadata.get("training_period")
    if not period:
        return None
    end = pd.Timestamp(period[1])
    cutoff = loaded.model.metadata.get("history_cutoff")
    if loaded.model.metadata.get("refreshed_from_version") and cutoff:
        end = max(end, pd.Timestamp(cutoff))
    return pd.Timestamp(period[0]), end


def _within(lab: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, known_by: str | None) -> pd.DataFrame:
    """Labelled rows dated ``start`` .. ``end`` whose outcome was known by ``known_by`` (a model cannot have
    learned an outcome recorded after its history cut-off, though its declaration is older)."""
    d = lab["declaration_date"]
    keep = (d >= start) & (d <= end)
    if known_by and "inspected_date" in lab.columns:
        keep &= ~(pd.to_datetime(lab["inspected_date"]) > pd.Timestamp(known_by))
    return lab[keep]


def training_history(loaded: LoadedModel, ts: TrainingSet,
                     store_outcomes: Callable[[], pd.DataFrame] | None = None) -> tuple[pd.DataFrame, str]:
    """The labelled rows the model learned from (:func:`learned_period`): those of ``ts`` when ``ts`` covers
    the period's start, else those of the model's training files (its run's ``sources``). For a refreshed
    snapshot, the files its refresh read (recorded on the refresh's run) and its trained version's training
    files, which its booster learned from. ``store_outcomes`` reads the serving store's outcomes when those
    runs learned from them. Returns the rows and where they came from."""
    learned = learned_period(loaded)
    if learned is None:
        return ts.labelled.iloc[:0], "none: the model records no training period"
    start, end = learned
    known_by = loaded.model.metadata.get("history_cutoff")
    rows = _within(ts.labelled, start, end, known_by)
    # a week's slack: the earliest labelled day of the evaluated files may follow the period's first day
    if not rows.empty and rows["declaration_date"].min() <= start + pd.Timedelta(days=7):
        return rows, "the evaluated files"
    notes: list[str] = []
    client = configure_mlflow().MlflowClient()
    label = loaded.model.metadata.get("label")
    files = run_training_files(client, loaded.run_id, loaded.version, label, notes, store_outcomes)
    if not loaded.model.metadata.get("refreshed_from_version"):
        if files is not None:
            return _within(files.labelled, start, end, known_by), "the model's training files"
        return rows, f"the evaluated files, part of the training period only ({'; '.join(notes)})"
    trained = trained_version(client, loaded.name, loaded.version)
    trained_run = client.get_model_version(loaded.name, trained).run_id
    parts, said = [], []
    if files is not None:
        parts.append(_within(files.labelled, start, end, known_by))
        said.append(f"the files v{loaded.version}'s feature snapshot was refreshed from")
    if files is None or run_sources(client, trained_run) != run_sources(client, loaded.run_id):
        booster = run_training_files(client, trained_run, trained, label, notes, store_outcomes)
        if booster is not None:
            parts.append(_within(booster.labelled, start, pd.Timestamp(loaded.model.metadata["training_period"][1]),
                                 known_by))
            said.append(f"the training files of v{trained}, whose booster it has")
    if not parts:
        return rows, f"the evaluated files, part of the training period only ({'; '.join(notes)})"
    both = pd.concat(parts, ignore_index=True).drop_duplicates("declaration_id")
    missing = f" ({'; '.join(notes)})" if notes else ""
    return both, " and ".join(said) + missing


def evaluate_model(loaded: LoadedModel, ts: TrainingSet, period: tuple[str, str] | None = None,
                   history: pd.DataFrame | None = None,
                   store_outcomes: Callable[[], pd.DataFrame] | None = None) -> dict[str, Any]:
    """Score the labelled rows with the model (its own feature snapshot) and compute metrics: of all
    rows (top-level keys), of the rows whose consignment profile occurs in the model's training
    history (``seen``) and of the others (``novel``), with each part's share (``shares``).

    ``history``: the labelled rows the model was fitted on (default: :func:`training_history`, which reads
    the serving store's outcomes through ``store_outcomes`` when the model learned from them).
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
        history, source = training_history(loaded, ts, store_outcomes)
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


def check_refresh_history(history: History, snapshot_cutoff: Any, learned: dict[str, Any] | None = None) -> None:
    """A refresh rebuilds the snapshot from every known declaration: a history without declarations, or
    one that ends before the snapshot the model already has, would make it forget (and the alias
    would move to that version). ``learned``: the data the model's snapshot was built from, as its run
    recorded them (:func:`training.tracking.data_fingerprint`): the declarations, outcomes and seizures
    must each reach as far (a stale declarations file, a left-out ``--seizures`` or outcome file would
    otherwise pass, the overall cut-off being held up by the others). Raises :class:`TrainingError`;
    nothing is registered."""
    require_declarations(history.declarations)
    if snapshot_cutoff is not None and pd.notna(snapshot_cutoff) and history.cutoff is not None \
            and pd.Timestamp(history.cutoff) < pd.Timestamp(snapshot_cutoff):
        raise TrainingError(f"the history ends on {pd.Timestamp(history.cutoff).date()}, before the model's own "
                            f"feature snapshot (up to {pd.Timestamp(snapshot_cutoff).date()}): a refresh must not "
                            "forget what the model knows; pass every known declaration and outcome. Nothing was "
                            "registered")
    if not learned:
        return
    from training.tracking import data_extent

    now = data_extent(history.declarations, history.outcomes, history.seizures)
    for kind, option in (("declarations", "--declarations"), ("outcomes", "--outcomes and the serving store"),
                         ("seizures", "--seizures")):
        had, has = learned.get(f"{kind}_end"), now[f"{kind}_end"]
        if had and (has is None or has < had):
            given = f"end on {has}" if has else "are none"
            raise TrainingError(
                f"the {kind} given {given}, and the model's feature snapshot holds {learned.get(f'n_{kind}'):,} "
                f"{kind} up to {had}: a refresh must not forget what the model knows (a stale or left-out file?); "
                f"pass every known one ({option}). Nothing was registered")


def refresh_features(model_uri: str, history: History, alias: str | None = None,
                     sources: dict[str, list[str]] | None = None) -> tuple[str, str]:
    """Rebuild a model's feature snapshot from a newer history; register it as a new version
    (same booster and calibration) and point ``alias`` (default: the alias refreshed) at it.

    ``sources``: the files (and serving store) ``history`` was read from, in the form training records
    (``TrainingSet.sources``); the refresh's run records them, so that ``evaluate`` can tell which rows the
    snapshot learned from. The run and the version also name the trained version the booster comes from."""
    from training.tracking import FINGERPRINT_TAG, data_fingerprint

    mlflow = configure_mlflow()
    loaded = load_risk_model(model_uri)
    client = mlflow.MlflowClient()
    recorded = client.get_run(loaded.run_id).data.tags.get(FINGERPRINT_TAG) if loaded.run_id else None
    check_refresh_history(history, getattr(loaded.model.pipeline, "cutoff_", None),
                          json.loads(recorded) if recorded else None)
    trained = trained_version(client, loaded.name, loaded.version)
    model = copy.deepcopy(loaded.model)
    model.pipeline.refresh(history)
    model.metadata = {**model.metadata, "history_cutoff": str(pd.Timestamp(history.cutoff).date()),  # type: ignore[arg-type]
                      "refreshed_from_version": loaded.version, "trained_version": trained}
    target_alias = alias or loaded.alias
    mlflow.set_experiment("riskprof")
    with mlflow.start_run(run_name=f"refresh-features-{loaded.name}-v{loaded.version}") as run:
        mlflow.log_params({"refreshed_from": loaded.uri, "history_cutoff": model.metadata["history_cutoff"],
                           "n_declarations": len(history.declarations), "n_outcomes": len(history.outcomes)})
        mlflow.set_tags({"job": "refresh-features", "label": str(model.metadata.get("label")),
                         "refreshed_from_version": loaded.version, "trained_version": trained,
                         **({"refreshed_from_run_id": loaded.run_id} if loaded.run_id else {}),
                         **({"sources": json.dumps(sources)} if sources else {}),
                         FINGERPRINT_TAG: json.dumps(data_fingerprint(history.declarations, history.outcomes,
                                                                      history.seizures,
                                                                      str(model.metadata.get("label"))))})
        example = plain_input_example(history.declarations.head(3))
        info = log_risk_model(model, example)
        mv = mlflow.register_model(info.model_uri, loaded.name)
        client.set_model_version_tag(loaded.name, mv.version, "refreshed_from", loaded.version)
        client.set_model_version_tag(loaded.name, mv.version, "trained_version", trained)
        if target_alias:
            client.set_registered_model_alias(loaded.name, target_alias, mv.version)
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "snapshot.json"
            p.write_text(json.dumps(model.metadata, indent=1, default=str))
            mlflow.log_artifact(str(p), artifact_path="evaluation")
        return str(mv.version), run.info.run_id


__all__ = ["PromotionDecision", "evaluate_model", "learned_period", "promote", "promotion_gate", "refresh_features",
           "training_history"]
