"""The promotion gate: the challenger becomes champion only when it is at least as good as the
champion on labelled rows that *neither* model trained on.

A deployed model refitted on every labelled row (``--refit all``) has learned its own test period,
so its precision there says nothing; the gate therefore never scores a model on rows dated at or
before its training cut-off (the last labelled declaration date it was fitted on, metadata
``training_period``). Features are point in time (each row sees only outcomes known strictly
before its date), so a snapshot that holds the compared rows' outcomes cannot leak their labels.
The comparison, in order of preference:

1. ``after_both_cutoffs``: the labelled rows dated after both training cut-offs, both models scored
   live (each with its own feature snapshot, as deployed);
2. ``challenger_test_period``: the champion is older than the challenger's test period: the
   challenger's held-out twin (same recipe, trained before that period) against the champion scored
   live on it;
3. ``held_out_twins``: both were tested on the same period (e.g. trained on the same files): the
   champion's own held-out figure there against the challenger's;

and otherwise no fair comparison exists yet: the gate refuses, unless forced (the override is
recorded on the model version and in the promotion run).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.io import LoadError
from scoring.registry import LoadedModel, ModelLoadError, configure_mlflow, load_risk_model
from training.data import TrainingError, TrainingSet, load_training_set
from training.metrics import ranking_metrics

# fewer positives than this make precision at the inspection rate a coin toss: the period is not used
MIN_POSITIVES = 10
PROMOTION_EXPERIMENT = "riskprof"


@dataclass
class Comparison:
    """Which rows the two models were compared on, and each one's figure there."""

    basis: str  # after_both_cutoffs | challenger_test_period | held_out_twins
    period: list[str]
    rows: int | None
    positives: int | None
    challenger_precision: float
    champion_precision: float
    challenger_figure: str  # "live" (the deployed model scored) or "held-out twin"
    champion_figure: str


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
    basis: str | None = None  # see Comparison.basis; "no_champion", "champion_missing", "no_fair_period",
    # "refreshed_snapshot" (the champion is the challenger's own refreshed snapshot) otherwise
    rows: int | None = None  # labelled rows compared
    positives: int | None = None
    challenger_cutoff: str | None = None  # last labelled date each model was fitted on
    champion_cutoff: str | None = None
    figures: dict[str, str] = field(default_factory=dict)  # model → "live" | "held-out twin"
    notes: list[str] = field(default_factory=list)  # why earlier comparison bases were not used
    run_id: str | None = None  # the MLflow run that records the decision

    def details(self) -> list[str]:
        """The record a person reads: which rows were compared and each model's training cut-off."""
        lines = [f"training cut-off: challenger v{self.challenger_version} {self.challenger_cutoff or 'unknown'}"
                 + (f", champion v{self.champion_version} {self.champion_cutoff or 'unknown'}"
                    if self.champion_version else "")]
        if self.period:
            lines.append(f"compared on: {self.basis} {self.period[0]} .. {self.period[1]}, "
                         f"{_count(self.rows)} labelled rows, {_count(self.positives)} positives"
                         f" (challenger {self.figures.get('challenger', '-')}, champion "
                         f"{self.figures.get('champion', '-')})")
        lines += [f"note: {n}" for n in self.notes]
        if self.run_id:
            lines.append(f"recorded in MLflow run {self.run_id}")
        return lines


def _count(n: int | None) -> str:
    return f"{n:,}" if n is not None else "?"


def training_cutoff(model: LoadedModel) -> pd.Timestamp | None:
    """The last labelled declaration date the deployed model was fitted on (None: not recorded)."""
    period = model.model.metadata.get("training_period")
    return pd.Timestamp(period[1]) if period and len(period) == 2 and period[1] else None


def run_sources(client: Any, run_id: str | None) -> dict[str, list[str]]:
    """The files (and store) a run recorded it read (its ``sources`` tag); empty for no run or no tag."""
    if not run_id:
        return {}
    tags = client.get_run(run_id).data.tags
    return json.loads(tags.get("sources", "{}"))


def _run_test_counts(client: Any, model: LoadedModel) -> tuple[int | None, int | None]:
    """Rows and positives of the model's test period, as its training run logged them."""
    if not model.run_id:
        return None, None
    m = client.get_run(model.run_id).data.metrics
    n, pos = m.get("test_n"), m.get("test_positives")
    return (int(n) if n is not None else None), (int(pos) if pos is not None else None)


def _held_out(model: LoadedModel, key: str) -> float | None:
    """Precision at the rate on the model's test period by a model that had not seen it: the held-out
    twin when the deployed model was refitted on it, else the deployed model itself."""
    value = model.model.metadata.get("metrics", {}).get("precision_at", {}).get(key)
    return float(value) if value is not None else None


def _rows_in(ts: TrainingSet, start: pd.Timestamp | None, end: pd.Timestamp | None,
             after: bool = False) -> pd.DataFrame:
    d = ts.labelled["declaration_date"].dt.normalize()  # cut-offs and periods are days
    keep = np.ones(len(d), dtype=bool)
    if start is not None:
        keep &= (d > start).to_numpy() if after else (d >= start).to_numpy()
    if end is not None:
        keep &= (d <= end).to_numpy()
    return ts.labelled[keep]


def _live_precision(model: LoadedModel, rows: pd.DataFrame, rate: float) -> float:
    return float(ranking_metrics(rows["y"].to_numpy(dtype=bool), model.model.predict(rows),
                                 rates=(rate,))["precision_at"][f"{rate:g}"])


def _usable(rows: pd.DataFrame) -> bool:
    pos = int(rows["y"].sum())
    return pos >= MIN_POSITIVES and pos < len(rows)


def _period(rows: pd.DataFrame) -> list[str]:
    return [str(rows["declaration_date"].min().date()), str(rows["declaration_date"].max().date())]


def _figure(model: LoadedModel) -> str:
    return "held-out twin" if model.model.metadata.get("test_period_in_final_fit") else "held-out (deployed model)"


def _after_both_cutoffs(challenger: LoadedModel, champion: LoadedModel, rate: float, ts: TrainingSet | None,
                        notes: list[str]) -> Comparison | None:
    """Both models scored live on the labelled rows dated after both training cut-offs."""
    ch_cut, cp_cut = training_cutoff(challenger), training_cutoff(champion)
    if ch_cut is None or cp_cut is None:
        notes.append("a model's metadata has no training_period: the rows it learned are unknown")
        return None
    if ts is None:
        notes.append("no labelled rows to score (pass --declarations and --outcomes)")
        return None
    cut = max(ch_cut, cp_cut)
    rows = _rows_in(ts, cut, None, after=True)
    if not _usable(rows):
        notes.append(f"{len(rows):,} labelled rows after both cut-offs ({cut.date()}), {int(rows['y'].sum())} "
                     f"positives (at least {MIN_POSITIVES} positives and one negative are needed)")
        return None
    return Comparison("after_both_cutoffs", _period(rows), len(rows), int(rows["y"].sum()),
                      _live_precision(challenger, rows, rate), _live_precision(champion, rows, rate), "live", "live")


def _challenger_test_period(client: Any, challenger: LoadedModel, champion: LoadedModel, rate: float,
                            ts: TrainingSet | None, notes: list[str]) -> Comparison | None:
    """The challenger's held-out figure on its test period against the champion scored live there,
    when the champion's training ended before that period."""
    test = challenger.model.metadata.get("test_period")
    ch_fig = _held_out(challenger, f"{rate:g}")
    cp_cut = training_cutoff(champion)
    if not test or ch_fig is None or cp_cut is None or ts is None:
        return None
    if cp_cut >= pd.Timestamp(test[0]):
        notes.append(f"the champion was fitted on rows up to {cp_cut.date()}, inside the challenger's test period "
                     f"{test[0]} .. {test[1]}")
        return None
    rows = _rows_in(ts, pd.Timestamp(test[0]), pd.Timestamp(test[1]))
    n, _ = _run_test_counts(client, challenger)
    if n is not None and n != len(rows):
        notes.append(f"the challenger's test period held {n:,} labelled rows when it was trained, the data given "
                     f"now {len(rows):,}: not the same rows")
        return None
    if not _usable(rows):
        notes.append(f"the challenger's test period {test[0]} .. {test[1]} holds {int(rows['y'].sum())} positives")
        return None
    return Comparison("challenger_test_period", list(test), len(rows), int(rows["y"].sum()), ch_fig,
                      _live_precision(champion, rows, rate), _figure(challenger), "live")


def _held_out_twins(client: Any, challenger: LoadedModel, champion: LoadedModel, rate: float,
                    notes: list[str]) -> Comparison | None:
    """Both models' held-out figures on the same test period (both trained on the same files)."""
    key = f"{rate:g}"
    test, cp_test = challenger.model.metadata.get("test_period"), champion.model.metadata.get("test_period")
    ch_fig, cp_fig = _held_out(challenger, key), _held_out(champion, key)
    if ch_fig is None or cp_fig is None:
        notes.append(f"no held-out precision at {key} % in a model's metadata (logged at 1, 2, 5 and 10 %)")
        return None
    if not test or list(test) != list(cp_test or []):
        notes.append(f"the models were tested on different periods (challenger {test}, champion {cp_test})")
        return None
    ch_n, cp_n = _run_test_counts(client, challenger), _run_test_counts(client, champion)
    if None not in ch_n and None not in cp_n and ch_n != cp_n:
        notes.append(f"the test period {test[0]} .. {test[1]} held different rows for each model "
                     f"(challenger {ch_n[0]} rows, champion {cp_n[0]})")
        return None
    n, pos = ch_n if None not in ch_n else cp_n
    if pos is not None and pos < MIN_POSITIVES:
        notes.append(f"the shared test period holds {pos} positives (at least {MIN_POSITIVES} are needed)")
        return None
    return Comparison("held_out_twins", list(test), n, pos, ch_fig, cp_fig, _figure(challenger), _figure(champion))


def compare_models(client: Any, challenger: LoadedModel, champion: LoadedModel, rate: float,
                   ts: TrainingSet | None, notes: list[str]) -> Comparison | None:
    """The fairest comparison available (see the module docstring), or None; ``notes`` collects why
    each earlier basis could not be used."""
    return (_after_both_cutoffs(challenger, champion, rate, ts, notes)
            or _challenger_test_period(client, challenger, champion, rate, ts, notes)
            or _held_out_twins(client, challenger, champion, rate, notes))


def _no_fair_period(challenger: LoadedModel, champion: LoadedModel) -> str:
    ch_cut, cp_cut = training_cutoff(challenger), training_cutoff(champion)
    return (f"refused: no fair comparison period exists yet: champion v{champion.version} was fitted on labelled "
            f"rows up to {cp_cut.date() if cp_cut is not None else 'an unknown date'} and challenger "
            f"v{challenger.version} up to {ch_cut.date() if ch_cut is not None else 'an unknown date'}, no labelled "
            "period after both cut-offs can be scored, and they share no held-out test period. Promote again "
            "once outcomes of later declarations are recorded (pass them with --declarations and --outcomes), "
            f"or use --force: the override is recorded on v{challenger.version} as the model version tag "
            "promoted=forced and in the promotion run")


def decide(name: str, challenger: LoadedModel, champion: LoadedModel | None, comparison: Comparison | None,
           rate: float, force: bool, notes: list[str], lost: Mapping[str, str] | None = None) -> PromotionDecision:
    """The decision from a comparison (pure: nothing recorded). ``lost``: with no champion, the last
    promotion of ``name`` recorded in MLflow (:func:`last_promotion`): the champion's version was deleted or
    its alias removed, so there is a champion the challenger was never compared with."""
    key = f"{rate:g}"
    ch_cut = training_cutoff(challenger)
    cp_cut = training_cutoff(champion) if champion is not None else None
    d = PromotionDecision(False, False, challenger.version, champion.version if champion is not None else None,
                          rate, None, None, None, "", notes=notes,
                          challenger_cutoff=str(ch_cut.date()) if ch_cut is not None else None,
                          champion_cutoff=str(cp_cut.date()) if cp_cut is not None else None)
    if champion is None and lost is not None:
        was = f"v{lost['version']} was made champion of {name} on {lost['day']} (promotion run {lost['run_id']})"
        if not force:
            return replace(d, basis="champion_missing", message=(
                f"refused: {name} has no champion now, but {was}: that version was deleted or the alias "
                f"removed, and v{challenger.version} was never compared with it. Naming a new champion without a "
                f"comparison is a person's decision: `riskprof promote --name {name} --force` (recorded on "
                f"v{challenger.version} as the model version tag promoted=forced and in the promotion run)"))
        return replace(d, promoted=True, forced=True, basis="champion_missing",
                       message=f"forced: v{challenger.version} is now champion of {name} without a comparison "
                               f"({was}, and is gone; recorded as promoted=forced)")
    if champion is None:
        return replace(d, promoted=True, basis="no_champion",
                       message=f"promoted: v{challenger.version} is now champion of {name} (no champion before)")
    if comparison is None:
        if not force:
            return replace(d, basis="no_fair_period", message=_no_fair_period(challenger, champion))
        return replace(d, promoted=True, forced=True, basis="no_fair_period",
                       message=f"forced: v{challenger.version} is now champion of {name} without a fair comparison "
                               "(recorded as promoted=forced)")
    c = comparison
    d = replace(d, challenger_precision=c.challenger_precision, champion_precision=c.champion_precision,
                period=c.period, basis=c.basis, rows=c.rows, positives=c.positives,
                figures={"challenger": c.challenger_figure, "champion": c.champion_figure})
    figures = (f"precision@{key}%: challenger {c.challenger_precision:.4f} vs champion {c.champion_precision:.4f} "
               f"on {c.period} ({c.basis}, {_count(c.rows)} rows neither model trained on)")
    if c.challenger_precision >= c.champion_precision:
        return replace(d, promoted=True, message=f"promoted: v{challenger.version} is now champion of {name} ({figures})")
    if force:
        return replace(d, promoted=True, forced=True, message=f"forced: v{challenger.version} is now champion of "
                       f"{name} although worse ({figures}; recorded as promoted=forced)")
    return replace(d, message=(
        f"refused: challenger v{challenger.version} precision@{key}% = {c.challenger_precision:.4f} < champion "
        f"v{champion.version} precision@{key}% = {c.champion_precision:.4f} on {c.period} ({c.basis}, "
        f"{_count(c.rows)} rows neither model trained on); use --force to override (recorded on "
        f"v{challenger.version} as the model version tag promoted=forced and in the promotion run)"))


def last_promotion(client: Any, name: str) -> dict[str, str] | None:
    """The last promotion of ``name`` that MLflow records (version, day, run id), None if it records none:
    with no champion alias now, a champion existed and is gone (its version deleted, or the alias removed)."""
    experiment = client.get_experiment_by_name(PROMOTION_EXPERIMENT)
    if experiment is None:
        return None
    quoted = name.replace("'", "\\'")
    runs = [r for outcome in ("promoted", "forced") for r in client.search_runs(
        [experiment.experiment_id], f"params.model_name = '{quoted}' and tags.promotion_decision = '{outcome}'",
        order_by=["attributes.start_time DESC"], max_results=1)]
    if not runs:
        return None
    last = max(runs, key=lambda r: r.info.start_time)
    day = pd.Timestamp(last.info.start_time, unit="ms").date().isoformat()
    return {"version": last.data.params.get("challenger_version", "?"), "day": day, "run_id": last.info.run_id}


def record_decision(name: str, decision: PromotionDecision) -> str:
    """Record the decision in MLflow: a run ``promote-<name>-v<challenger>`` (params, metrics and
    ``promotion/decision.json``) and tags on the challenger's model version. Returns the run id."""
    mlflow = configure_mlflow()
    client = mlflow.MlflowClient()
    outcome = ("forced" if decision.forced else "promoted") if decision.promoted else "refused"
    d = decision
    params = {"model_name": name, "challenger_version": d.challenger_version, "champion_version": d.champion_version,
              "rate": d.rate, "basis": d.basis, "period": json.dumps(d.period), "rows": d.rows,
              "positives": d.positives, "challenger_cutoff": d.challenger_cutoff,
              "champion_cutoff": d.champion_cutoff, "challenger_figure": d.figures.get("challenger"),
              "champion_figure": d.figures.get("champion")}
    mlflow.set_experiment(PROMOTION_EXPERIMENT)
    with mlflow.start_run(run_name=f"promote-{name}-v{d.challenger_version}",
                          nested=mlflow.active_run() is not None) as run:
        mlflow.log_params({k: str(v) for k, v in params.items()})
        mlflow.log_metrics({f"{who}_precision_at_{d.rate:g}": float(v) for who, v in
                            (("challenger", d.challenger_precision), ("champion", d.champion_precision))
                            if v is not None})
        mlflow.set_tags({"promotion_decision": outcome, "forced": str(d.forced).lower()})
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "decision.json"
            p.write_text(json.dumps({**asdict(d), "run_id": run.info.run_id, "decision": outcome}, indent=1))
            mlflow.log_artifact(str(p), artifact_path="promotion")
    tags = {"promotion_decision": outcome, "promotion_run_id": run.info.run_id, "promotion_basis": d.basis,
            "promotion_period": json.dumps(d.period), "promotion_rows": d.rows, "promotion_positives": d.positives,
            "promotion_challenger_cutoff": d.challenger_cutoff, "promotion_champion_cutoff": d.champion_cutoff,
            "promotion_champion_version": d.champion_version,
            f"promotion_precision_at_{d.rate:g}": _fmt(d.challenger_precision),
            f"promotion_champion_precision_at_{d.rate:g}": _fmt(d.champion_precision)}
    if d.forced:
        tags["promotion_override"] = "forced past the gate: " + {
            "no_fair_period": "no fair comparison period", "refreshed_snapshot": "back from the champion, its refreshed snapshot"}.get(
            d.basis or "", "the challenger was worse")
    for k, v in tags.items():
        if v is not None:
            client.set_model_version_tag(name, d.challenger_version, k, str(v))
    return run.info.run_id


def _fmt(v: float | None) -> str | None:
    return f"{v:.4f}" if v is not None else None


def training_files(client: Any, model: LoadedModel, notes: list[str],
                   store_outcomes: Callable[[], pd.DataFrame] | None = None) -> TrainingSet | None:
    """The training set read again from the model's training files (its run's ``sources`` tag); None (and a
    note why) when they are not recorded or cannot be read.

    A retrained model's run also records ``store`` when it learned from the outcomes recorded through the
    API: ``store_outcomes`` reads them (the serving store, which training does not import); without it the
    rows are the files' only, and a note says so. A refreshed snapshot's run records the files (and store)
    its refresh read."""
    return run_training_files(client, model.run_id, model.version, model.model.metadata.get("label"), notes,
                              store_outcomes)


def run_training_files(client: Any, run_id: str | None, version: str, label: str | None, notes: list[str],
                       store_outcomes: Callable[[], pd.DataFrame] | None = None) -> TrainingSet | None:
    """:func:`training_files` of the run ``run_id`` (of ``version``, predicting ``label``)."""
    sources = run_sources(client, run_id)
    if not sources.get("declarations"):
        notes.append(f"the run of v{version} records no training files")
        return None
    first = {k: (v[0] if v else None) for k, v in sources.items()}
    outcome_files = sources.get("outcomes") or []
    extra = None
    if sources.get("store") and label in (None, "hit"):
        if store_outcomes is None:
            notes.append(f"v{version} also learned from the outcomes recorded in the serving store "
                         f"({sources['store'][0]}), not read here: the rows lack them")
        else:
            extra = store_outcomes()
    try:
        if len(outcome_files) > 1 or extra is not None:  # retrain: every file (a later one winning), the store last
            from training.retrain import load_retraining_set

            return load_retraining_set(sources["declarations"], seizures=first.get("seizures"),
                                       outcome_files=outcome_files, extra_outcomes=extra,
                                       mapping=first.get("mapping"), label=label)
        return load_training_set(sources["declarations"], seizures=first.get("seizures"),
                                 outcomes=first.get("outcomes"), mapping=first.get("mapping"), label=label)
    except (LoadError, TrainingError, FileNotFoundError) as exc:
        notes.append(f"the training files of v{version} cannot be read now ({str(exc).splitlines()[0]})")
        return None


def preview_promotion(name: str, challenger: LoadedModel, champion: LoadedModel | None, rate: float = 5.0,
                      force: bool = False, ts: TrainingSet | None = None,
                      store_outcomes: Callable[[], pd.DataFrame] | None = None) -> PromotionDecision:
    """The gate's decision (see :func:`promotion_gate`) without moving an alias or recording anything:
    a dry run, e.g. ``riskprof retrain --dry-run``."""
    if champion is not None and champion.version == challenger.version:
        cut = training_cutoff(challenger)
        day = str(cut.date()) if cut is not None else None
        return PromotionDecision(False, force, challenger.version, champion.version, rate, None, None, None,
                                 f"version {challenger.version} is already the champion",
                                 challenger_cutoff=day, champion_cutoff=day)
    if champion is not None and (snapshot := _refreshed_snapshot_of(name, champion, challenger, rate, force)):
        return snapshot
    client = configure_mlflow().MlflowClient()
    notes: list[str] = []
    comparison = None
    if champion is not None:
        ch_label, cp_label = challenger.model.metadata.get("label"), champion.model.metadata.get("label")
        if ch_label != cp_label:
            notes.append(f"the champion predicts the label {cp_label!r}, the challenger {ch_label!r}")
        else:
            if ts is None and training_cutoff(challenger) is not None and training_cutoff(champion) is not None:
                ts = training_files(client, challenger, notes, store_outcomes)
            comparison = compare_models(client, challenger, champion, rate, ts, notes)
    lost = last_promotion(client, name) if champion is None else None
    return decide(name, challenger, champion, comparison, rate, force, notes, lost)


def _refreshed_snapshot_of(name: str, champion: LoadedModel, challenger: LoadedModel, rate: float,
                           force: bool) -> PromotionDecision | None:
    """The decision when the champion is a feature snapshot refreshed from the challenger (``refresh-features``
    moved ``champion`` and left ``challenger`` on the version it refreshed): the same booster with older
    look-ups, so "promoting" it would only undo the refreshes. Refused unless forced; None otherwise."""
    meta = champion.model.metadata
    if not meta.get("refreshed_from_version"):
        return None
    trained = meta.get("trained_version") or trained_version(configure_mlflow().MlflowClient(), name,
                                                             champion.version)
    if str(trained) != str(challenger.version):
        return None
    cut = training_cutoff(challenger)
    day = str(cut.date()) if cut is not None else None
    was = (f"champion v{champion.version} is v{challenger.version}'s feature snapshot refreshed up to "
           f"{meta.get('history_cutoff', 'a later day')} (refresh-features): the same booster with newer look-ups")
    if not force:
        return PromotionDecision(False, False, challenger.version, champion.version, rate, None, None, None,
                                 f"version {challenger.version} is already the champion: {was}; promoting "
                                 f"v{challenger.version} would go back to its older snapshot. Nothing to promote "
                                 "(--force does it all the same, recorded as promoted=forced)",
                                 basis="refreshed_snapshot", challenger_cutoff=day, champion_cutoff=day)
    return PromotionDecision(True, True, challenger.version, champion.version, rate, None, None, None,
                             f"forced: v{challenger.version} is champion of {name} again in place of its refreshed "
                             f"snapshot ({was}; recorded as promoted=forced)",
                             basis="refreshed_snapshot", challenger_cutoff=day, champion_cutoff=day)


def promotion_gate(name: str, challenger: LoadedModel, champion: LoadedModel | None, rate: float = 5.0,
                   force: bool = False, ts: TrainingSet | None = None,
                   store_outcomes: Callable[[], pd.DataFrame] | None = None) -> PromotionDecision:
    """The one promotion gate, used by ``riskprof promote`` and by the ``riskprof retrain`` job: compare
    the challenger with the champion on rows neither trained on (see the module docstring), decide,
    move the ``champion`` alias when the challenger is at least as good (or ``force``), and record the
    decision (compared period, rows, positives, each model's training cut-off) in MLflow.

    ``ts``: labelled rows to compare on (retrain passes the set it has just trained on, with the
    outcomes known now); default: the challenger's training files, read again (with the serving store's outcomes
    through ``store_outcomes`` when the challenger learned from them, see :func:`training_files`).
    """
    decision = preview_promotion(name, challenger, champion, rate=rate, force=force, ts=ts,
                                 store_outcomes=store_outcomes)
    if champion is not None and champion.version == challenger.version:
        return decision
    if decision.basis == "refreshed_snapshot" and not decision.promoted:  # nothing to do, nothing to record
        return decision
    client = configure_mlflow().MlflowClient()
    if decision.promoted:
        client.set_registered_model_alias(name, "champion", challenger.version)
        client.set_model_version_tag(name, challenger.version, "promoted", "forced" if decision.forced else "checked")
        if champion is not None:
            client.set_model_version_tag(name, champion.version, "replaced_by", challenger.version)
    decision.run_id = record_decision(name, decision)
    return decision


def trained_version(client: Any, name: str, version: str) -> str:
    """The version whose training made ``version``'s booster: ``version`` itself, or for a refreshed feature
    snapshot (``riskprof refresh-features``, model version tag ``refreshed_from``) the trained version it
    was refreshed from, through any number of nightly refreshes."""
    seen = {str(version)}
    tags = client.get_model_version(name, version).tags
    if tags.get("trained_version"):  # recorded by the refresh
        return str(tags["trained_version"])
    while parent := tags.get("refreshed_from"):
        if parent in seen:  # a cycle of tags set by hand: stop rather than loop
            break
        seen.add(parent)
        version = parent
        tags = client.get_model_version(name, version).tags
    return str(version)


def load_champion(name: str) -> LoadedModel | None:
    """``models:/<name>@champion``, or None when there is none (no such alias or model): only then does the
    gate promote without a comparison. A champion that is registered but does not load raises
    :class:`ModelLoadError`: a broken artifact must not wave a challenger through as "no champion before"."""
    try:
        return load_risk_model(f"models:/{name}@champion")
    except ModelLoadError as exc:
        raise ModelLoadError(f"{exc}. The promotion gate cannot compare a challenger with it: repair it, or point "
                             f"the champion alias at a version that loads (nothing was promoted)") from None
    except Exception as exc:  # MLflow's own error for the alias or the model: only "not found" means none
        if getattr(exc, "error_code", None) in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE") \
                and "not found" in str(exc):
            return None
        raise


def promote(name: str, rate: float = 5.0, force: bool = False, ts: TrainingSet | None = None,
            declarations: Sequence[str | Path] | None = None, seizures: str | Path | None = None,
            outcomes: str | Path | None = None, mapping: str | Path | None = None,
            store_outcomes: Callable[[], pd.DataFrame] | None = None) -> PromotionDecision:
    """Promote ``models:/<name>@challenger`` through :func:`promotion_gate`. Labelled rows to compare on:
    ``ts``, else the given files (read with the challenger's label), else the challenger's training files
    (and ``store_outcomes()`` when it learned from the serving store's)."""
    challenger = load_risk_model(f"models:/{name}@challenger")
    champion = load_champion(name)
    if ts is None and declarations:
        ts = load_training_set(declarations, seizures=seizures, outcomes=outcomes, mapping=mapping,
                               label=challenger.model.metadata.get("label"))
    return promotion_gate(name, challenger, champion, rate=rate, force=force, ts=ts, store_outcomes=store_outcomes)


__all__ = ["MIN_POSITIVES", "Comparison", "PromotionDecision", "compare_models", "decide", "load_champion",
           "preview_promotion", "promote", "promotion_gate", "record_decision", "run_sources", "run_training_files", "trained_version",
           "training_cutoff", "training_files"]
