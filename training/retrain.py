"""The weekly retraining job: a challenger trained on everything known now except the most recent
labelled weeks, which are kept back so that the promotion gate can compare it with the champion on
rows neither model trained on.

Point in time as today: the history (declarations, seizures, every outcome known, including those
of the held-back weeks) is the one scoring will use from now on; each labelled row's features still
see only the outcomes known before its own date, so the held-back outcomes never reach the rows the
challenger learns from. Only the labelled rows of the held-back weeks are left out of the fit.

Nothing new, nothing trained: when the declarations, outcomes and seizures known now (and the label) are
exactly those the champion's booster learned from (the ``data_fingerprint`` its training run records; a
refreshed snapshot's is its trained version's), a new version would be the same model, so none is trained
(:class:`NothingNew`) unless asked for (``even_if_unchanged``).

The decision is the promotion gate's (:func:`training.promotion.promotion_gate`, the gate ``riskprof
promote`` calls): no second rule lives here. The gate judges the version this job registered, named by
its number, never whatever the ``challenger`` alias points at when training ends (another job may
have registered a newer challenger meanwhile). The serving store is read by :mod:`serving.retrain`,
which passes its outcomes in as a frame (training never imports serving).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from features.contracts import DECLARATION, OUTCOME, SEIZURE
from features.io import load_table
from features.mapping import LABEL_PREFIX, load_mapping
from training.data import (
    TrainingError,
    TrainingSet,
    check_trainable,
    labelled_from_outcomes,
    load_training_set,
)

DEFAULT_HOLDOUT_WEEKS = 4

__all__ = ["DEFAULT_HOLDOUT_WEEKS", "Holdout", "NothingNew", "RetrainResult", "holdout_split", "load_retraining_set",
           "nothing_new_since_champion", "preview_decision", "retrain"]


@dataclass(frozen=True)
class Holdout:
    """The most recent labelled weeks, kept out of the challenger's fit."""

    weeks: int
    start: str  # first day held back; the challenger trains on labelled rows dated before it
    end: str  # the last labelled declaration date
    rows: int
    positives: int
    training_rows: int  # labelled rows the challenger was fitted on


@dataclass
class RetrainResult:
    training: Any  # training.fit.TrainResult of the challenger (run id, version, metrics)
    holdout: Holdout
    decision: Any  # training.promotion.PromotionDecision (a preview when ``applied`` is False)
    applied: bool  # False: a dry run, the champion alias was left alone and no decision recorded
    data: dict[str, Any] = field(default_factory=dict)  # declarations, outcomes, labelled rows, their sources
    run_id: str | None = None  # the MLflow run that records the retraining job

    @property
    def outcome(self) -> str:
        """promoted | refused, prefixed ``would be`` on a dry run."""
        word = "promoted" if self.decision.promoted else "refused"
        return word if self.applied else f"would be {word} (dry run)"


class NothingNew(Exception):  # noqa: N818 (not an error: the job's answer when there is nothing to learn)
    """No declaration, outcome or seizure differs from what the champion learned from: no version trained."""

    def __init__(self, name: str, champion_version: str, trained_version: str, learned: dict[str, Any]):
        self.name, self.champion_version, self.trained_version = name, champion_version, trained_version
        self.learned = learned  # the trained version's data fingerprint (training.tracking.data_fingerprint)
        snapshot = (f"; champion v{champion_version} is its feature snapshot refreshed since"
                    if champion_version != trained_version else "")
        seizures = "no seizures" if learned.get("n_seizures") is None else \
            f"{learned['n_seizures']:,} seizures up to {learned.get('seizures_end')}"
        super().__init__(
            f"nothing new since version {trained_version} (its outcomes end on {learned.get('outcomes_end')}): no "
            f"new version. The data read now are the ones it learned from: {learned['n_declarations']:,} "
            f"declarations up to {learned.get('declarations_end')}, {learned['n_outcomes']:,} outcomes, {seizures}, "
            f"label {learned['label']!r}{snapshot}. Nothing was trained, registered or promoted; "
            "--even-if-unchanged trains a version all the same")


def check_model_registered(name: str) -> None:
    """Raise :class:`TrainingError` unless ``name`` is a registered model: the weekly job improves the model
    ``riskprof train`` registered. A mistyped ``--name`` created a new registered model and promoted its
    first version as "no champion before", beside the model meant."""
    from scoring.registry import configure_mlflow

    client = configure_mlflow().MlflowClient()
    try:
        client.get_registered_model(name)
    except Exception as exc:  # MLflow's own error: only "does not exist" is the user's
        if getattr(exc, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
            raise
        known = sorted(m.name for m in client.search_registered_models(max_results=50))
        raise TrainingError(f"no registered model {name!r} in this MLflow store ({', '.join(known) or 'none'}): "
                            "retrain trains a new version of a model `riskprof train --name NAME` registered; "
                            "check --name (and MLFLOW_TRACKING_URI), or pass --new-model to start this one") from None


def nothing_new_since_champion(ts: TrainingSet, name: str) -> NothingNew | None:
    """:class:`NothingNew` when ``ts`` holds exactly the data the champion's booster learned from, as its
    training run recorded them (:data:`training.tracking.FINGERPRINT_TAG`); None when anything differs,
    when there is no champion, or when its run records no fingerprint (trained before it was recorded)."""
    from scoring.registry import configure_mlflow
    from training.promotion import trained_version
    from training.tracking import FINGERPRINT_PARTS, FINGERPRINT_TAG, data_fingerprint

    client = configure_mlflow().MlflowClient()
    try:
        champion = client.get_model_version_by_alias(name, "champion")
    except Exception as exc:  # MLflow's own error: only "not found" means no champion (the gate says the rest)
        if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") \
                and "not found" in str(exc):
            return None
        raise
    trained = trained_version(client, name, str(champion.version))
    run_id = client.get_model_version(name, trained).run_id
    recorded = client.get_run(run_id).data.tags.get(FINGERPRINT_TAG) if run_id else None
    if not recorded:
        return None
    learned = json.loads(recorded)
    now = data_fingerprint(ts.declarations, ts.outcomes, ts.seizures, ts.label)
    if any(now.get(k) != learned.get(k) for k in FINGERPRINT_PARTS):
        return None
    return NothingNew(name, str(champion.version), trained, learned)


def file_sources(declarations: Sequence[str | Path], seizures: str | Path | None = None,
                 outcome_files: Sequence[str | Path] = (), mapping: str | Path | None = None) -> dict[str, list[str]]:
    """The files a job read, as a training run records them (``TrainingSet.sources``: resolved paths)."""
    sources = {"declarations": [str(Path(p).resolve()) for p in declarations]}
    if seizures:
        sources["seizures"] = [str(Path(seizures).resolve())]
    if outcome_files:
        sources["outcomes"] = [str(Path(p).resolve()) for p in outcome_files]
    if mapping:
        sources["mapping"] = [str(Path(mapping).resolve())]
    return sources


def _merge_outcomes(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """One outcome per declaration; a later frame wins (files in the order given, then the store)."""
    kept = [f for f in frames if len(f)]
    if not kept:
        raise TrainingError("no labels: pass --outcomes FILE, or record outcomes through the API "
                            "(POST /v1/outcomes) and read them from the serving store")
    return pd.concat(kept, ignore_index=True).drop_duplicates("declaration_id", keep="last").reset_index(drop=True)


def load_retraining_set(declarations: Sequence[str | Path], *, seizures: str | Path | None = None,
                        outcome_files: Sequence[str | Path] = (), extra_outcomes: pd.DataFrame | None = None,
                        mapping: str | Path | None = None, label: str | None = None,
                        extra_source: str | None = None) -> TrainingSet:
    """Every declaration and every outcome known now: the outcome files, then ``extra_outcomes`` (the
    serving store's, in the outcome contract; they win for a declaration both hold). With a label the
    mapping defines, labels come from the declarations and the outcomes are ignored (they record hits).
    ``extra_source`` names where the extra outcomes came from (kept in ``sources``)."""
    if label is not None and label != "hit":
        return load_training_set(declarations, seizures=seizures, mapping=mapping, label=label)
    m = load_mapping(mapping) if mapping else None
    decl = load_table(list(declarations), DECLARATION, m).frame
    seiz = load_table(seizures, SEIZURE).frame if seizures else None
    frames = [load_table(p, OUTCOME).frame for p in outcome_files]
    frames += [extra_outcomes] if extra_outcomes is not None else []
    if m is not None and m.labels and not any(len(f) for f in frames):
        raise TrainingError(f"no outcomes: pass --label with this mapping (labels: {sorted(m.labels)}) or --outcomes")
    outc = _merge_outcomes(frames)
    extra = tuple(m.extra_columns) if m is not None else tuple(
        c for c in decl.columns if c not in DECLARATION.columns and not c.startswith(LABEL_PREFIX))
    labelled = labelled_from_outcomes(decl, outc)
    labelled = labelled.sort_values(["declaration_date", "declaration_id"], kind="stable").reset_index(drop=True)
    check_trainable(labelled, "hit")
    sources = file_sources(declarations, seizures, outcome_files, mapping)
    if extra_source:
        sources["store"] = [extra_source]
    return TrainingSet(decl, outc, seiz, labelled, "hit", extra, sources)


def holdout_split(ts: TrainingSet, weeks: int) -> tuple[TrainingSet, Holdout]:
    """The training set without the labelled rows of the last ``weeks`` weeks (7-day periods ending on the
    last labelled declaration date), and what was held back. The history is left whole (see the module
    docstring)."""
    if weeks < 1:
        raise TrainingError(f"--holdout-weeks must be at least 1, got {weeks}: the comparison needs rows the "
                            "challenger did not train on")
    lab = ts.labelled
    dates = lab["declaration_date"].dt.normalize()
    end = dates.max()
    start = end - pd.Timedelta(days=7 * weeks - 1)
    keep = (dates < start).to_numpy()
    held = lab[~keep]
    if not keep.any():
        raise TrainingError(f"--holdout-weeks {weeks} holds back every labelled row ({dates.min().date()} .. "
                            f"{end.date()}): nothing is left to train on; use fewer weeks")
    trained = lab[keep].reset_index(drop=True)
    try:
        check_trainable(trained, ts.label)
    except TrainingError as exc:
        raise TrainingError(f"the labelled rows before the {weeks} held-back week(s) (dated before {start.date()}) "
                            f"cannot train a model: {exc}; use fewer --holdout-weeks") from None
    holdout = Holdout(weeks, str(start.date()), str(end.date()), len(held), int(held["y"].sum()), len(trained))
    return replace(ts, labelled=trained), holdout


def preview_decision(name: str, version: str, ts: TrainingSet, rate: float) -> Any:
    """What the gate would decide for ``version`` against the champion, without moving an alias or
    recording anything (a dry run): :func:`training.promotion.preview_promotion`, the gate's own steps."""
    from scoring.registry import load_risk_model
    from training.promotion import load_champion, preview_promotion

    return preview_promotion(name, load_risk_model(f"models:/{name}/{version}"), load_champion(name), rate=rate,
                             ts=ts)


def retrain(ts: TrainingSet, model_name: str, *, holdout_weeks: int = DEFAULT_HOLDOUT_WEEKS, seed: int = 0,
            num_threads: int = 2, rate: float = 5.0, apply: bool = True, about_data: dict[str, Any] | None = None,
            even_if_unchanged: bool = False, new_model: bool = False, **fit_kwargs: Any) -> RetrainResult:
    """Train a challenger on ``ts`` less its last ``holdout_weeks`` labelled weeks (registered with the
    alias ``challenger``), then put it through the promotion gate on ``ts`` (all labelled rows known
    now); ``apply=False`` previews the gate's decision instead. ``about_data``: more to record about the
    data (e.g. how many outcomes came from the serving store). Everything is recorded in MLflow: the
    training run, the gate's promotion run, and a ``retrain-<name>-v<version>`` run linking them.

    Raises :class:`NothingNew` (nothing trained or recorded) when ``ts`` is the data the champion learned
    from, unless ``even_if_unchanged``; :class:`TrainingError` when no model is registered as ``model_name``,
    unless ``new_model`` (the first version of a model no ``train`` registered)."""
    from scoring.registry import load_risk_model
    from training.promotion import load_champion, promotion_gate
    from training.tracking import train_and_log

    trained_ts, holdout = holdout_split(ts, holdout_weeks)
    if not new_model:
        check_model_registered(model_name)
    if not even_if_unchanged and (same := nothing_new_since_champion(ts, model_name)) is not None:
        raise same
    result = train_and_log(trained_ts, model_name, seed=seed, num_threads=num_threads, **fit_kwargs)
    if apply:  # the version this job registered, by number: another job may have moved the challenger alias since
        challenger = load_risk_model(f"models:/{model_name}/{result.version}")
        decision = promotion_gate(model_name, challenger, load_champion(model_name), rate=rate, ts=ts)
    else:
        decision = preview_decision(model_name, str(result.version), ts, rate)
    data = {"declarations": len(ts.declarations), "outcomes": len(ts.outcomes), "labelled": len(ts.labelled),
            "sources": ts.sources, **(about_data or {})}
    out = RetrainResult(result, holdout, decision, apply, data)
    out.run_id = record_retrain(model_name, out)
    return out


def record_retrain(name: str, r: RetrainResult) -> str:
    """A run ``retrain-<name>-v<version>`` with the held-back weeks, the data's size and sources, and the
    links to the training run and the promotion run; tags the training run back. Returns its run id."""
    from scoring.registry import configure_mlflow

    mlflow = configure_mlflow()
    d, h = r.decision, r.holdout
    mlflow.set_experiment("riskprof")
    with mlflow.start_run(run_name=f"retrain-{name}-v{r.training.version}") as run:
        mlflow.log_params({k: str(v) for k, v in {"model_name": name, "challenger_version": r.training.version,
                           "champion_version": d.champion_version, "holdout_weeks": h.weeks,
                           "holdout_start": h.start, "holdout_end": h.end, "training_run_id": r.training.run_id,
                           "promotion_run_id": d.run_id, "applied": r.applied, "rate": d.rate,
                           "basis": d.basis, "compared_period": json.dumps(d.period)}.items()})
        mlflow.log_metrics({"holdout_rows": h.rows, "holdout_positives": h.positives,
                            "training_rows": h.training_rows, "declarations": r.data["declarations"],
                            "outcomes": r.data["outcomes"], "labelled": r.data["labelled"],
                            **{k: float(v) for k in ("store_outcomes",) if (v := r.data.get(k)) is not None},
                            **{f"{who}_precision_at_{d.rate:g}": float(v) for who, v in
                               (("challenger", d.challenger_precision), ("champion", d.champion_precision))
                               if v is not None}})
        mlflow.set_tags({"job": "retrain", "retrain_decision": r.outcome, "sources": json.dumps(r.data["sources"])})
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "retrain.json"
            p.write_text(json.dumps({"holdout": asdict(h), "data": r.data, "decision": asdict(d),
                                     "outcome": r.outcome, "training_run_id": r.training.run_id}, indent=1,
                                    default=str))
            mlflow.log_artifact(str(p), artifact_path="retrain")
    client = mlflow.MlflowClient()
    client.set_tag(r.training.run_id, "retrain_run_id", run.info.run_id)
    client.set_tag(r.training.run_id, "job", "retrain")
    return run.info.run_id
