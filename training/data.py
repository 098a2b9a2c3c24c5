"""Assembling a labelled training set: declarations + outcomes (+ seizures), or mapped labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from features.contracts import DECLARATION, OUTCOME, SEIZURE
from features.history import History, outcomes_from_labels
from features.io import load_table
from features.mapping import LABEL_PREFIX, ColumnMapping, MappingError, load_mapping


class TrainingError(ValueError):
    """The data cannot train a model (no positives, one date, unknown label…)."""


@dataclass
class TrainingSet:
    declarations: pd.DataFrame  # every declaration known (the history), canonical
    outcomes: pd.DataFrame  # canonical outcomes (declaration_id, inspected_date, inspected, hit, …)
    seizures: pd.DataFrame | None
    labelled: pd.DataFrame  # rows with a label: declarations + y (+ revenue, selection columns)
    label: str
    extra_columns: tuple[str, ...]
    sources: dict[str, list[str]]
    outcome_delay_days: int = 0
    notes: list[str] = field(default_factory=list)  # what the loading left out, said to the user

    @property
    def history(self) -> History:
        return History(self.declarations, self.outcomes, self.seizures,
                       outcome_delay_days=self.outcome_delay_days)


def load_training_set(declarations: Sequence[str | Path], seizures: str | Path | None = None,
                      outcomes: str | Path | None = None, mapping: str | Path | ColumnMapping | None = None,
                      label: str | None = None, encoding: str | None = None,
                      delimiter: str | None = None) -> TrainingSet:
    """Declarations (with seizures for the history, and outcomes or a mapping's label) loaded,
    validated and labelled. ``encoding``/``delimiter``: of every CSV file read (default UTF-8 and
    the delimiter detected from each header), as ``riskprof validate`` and ``riskprof score`` take them."""
    m = load_mapping(mapping) if isinstance(mapping, str | Path) else mapping
    loaded = load_table(declarations, DECLARATION, m, encoding=encoding, delimiter=delimiter)
    decl = loaded.frame
    seiz = load_table(seizures, SEIZURE, encoding=encoding, delimiter=delimiter).frame if seizures else None
    extra = tuple(m.extra_columns) if m is not None else tuple(
        c for c in decl.columns if c not in DECLARATION.columns and not c.startswith(LABEL_PREFIX))
    sources = {"declarations": [str(Path(p).resolve()) for p in declarations]}
    notes: list[str] = list(loaded.warnings)  # codes that lost their leading zero: train and evaluate say it
    if seizures:
        sources["seizures"] = [str(Path(seizures).resolve())]
    if isinstance(mapping, str | Path):
        sources["mapping"] = [str(Path(mapping).resolve())]
    if label is not None and label != "hit":
        if m is None or label not in m.labels:
            known = sorted(m.labels) if m is not None else []
            raise TrainingError(
                f"label {label!r} is not defined by the mapping (labels defined: {known or 'none'}); "
                "without --mapping the label is the outcome contract's 'hit'")
        col = LABEL_PREFIX + label
        known_col = m.label_known or "declaration_date"
        if known_col not in decl.columns:
            raise MappingError(f"label_known column {known_col!r} is not a declaration column")
        outc = outcomes_from_labels(decl, col, known_col)
        labelled = decl.copy()
        labelled["y"] = decl[col].astype(bool).to_numpy()
        labelled["revenue"] = np.nan
        labelled["selection_source"] = pd.NA
        labelled["selection_probability"] = np.nan
    else:
        if outcomes is None:
            if m is not None and m.labels:
                raise TrainingError(f"--label is required with this mapping (labels: {sorted(m.labels)})")
            raise TrainingError("no labels: pass --outcomes FILE (or a --mapping that defines labels and --label)")
        outc = load_table(outcomes, OUTCOME, encoding=encoding, delimiter=delimiter).frame
        sources["outcomes"] = [str(Path(outcomes).resolve())]
        labelled = labelled_from_outcomes(decl, outc)
        label = "hit"
        notes += unmatched_outcomes(decl, outc) + early_outcomes(decl, outc)
    labelled = labelled.sort_values(["declaration_date", "declaration_id"], kind="stable").reset_index(drop=True)
    check_trainable(labelled, label)
    return TrainingSet(decl, outc, seiz, labelled, label, extra, sources, notes=notes)


def unmatched_outcomes(decl: pd.DataFrame, outc: pd.DataFrame) -> list[str]:
    """A note when outcomes name declarations the files do not hold: they label nothing (with every
    outcome unmatched, :func:`check_trainable` refuses the set)."""
    orphan = ~outc["declaration_id"].isin(decl["declaration_id"])
    n = int(orphan.sum())
    if not n or n == len(outc):
        return []
    first = ", ".join(map(str, outc.loc[orphan, "declaration_id"].head(3)))
    return [f"{n:,} of {len(outc):,} outcomes name no declaration in the declaration files (e.g. {first}): "
            "they label nothing and were left out"]


def early_outcomes(decl: pd.DataFrame, outc: pd.DataFrame) -> list[str]:
    """A note when outcomes are dated before their declaration (a mistyped date): the features count
    them from the declaration's date (:meth:`features.history.History.outcome_events`)."""
    declared = outc["declaration_id"].map(decl.drop_duplicates("declaration_id").set_index("declaration_id")
                                          ["declaration_date"])
    early = (pd.to_datetime(outc["inspected_date"]).dt.normalize() < declared.dt.normalize()).to_numpy()
    n = int(early.sum())
    if not n:
        return []
    first = ", ".join(f"{i} inspected {d:%Y-%m-%d}" for i, d in
                      outc.loc[early, ["declaration_id", "inspected_date"]].head(3).itertuples(index=False))
    return [f"{n:,} of {len(outc):,} outcomes are dated before their declaration (e.g. {first}): "
            "they count from the declaration's date"]


def labelled_from_outcomes(decl: pd.DataFrame, outc: pd.DataFrame) -> pd.DataFrame:
    """The inspected declarations with their outcome columns, labelled ``y`` = hit (unsorted)."""
    insp = outc[outc["inspected"].fillna(False).astype(bool)]
    labelled = decl.merge(insp[["declaration_id", "hit", "revenue", "selection_source",
                                "selection_probability", "inspected_date"]],
                          on="declaration_id", how="inner")
    labelled["y"] = labelled["hit"].fillna(False).astype(bool)
    return labelled


def check_trainable(labelled: pd.DataFrame, label: str) -> None:
    if labelled.empty:
        raise TrainingError("no labelled rows: no outcome matches a declaration")
    pos = int(labelled["y"].sum())
    if pos == 0:
        raise TrainingError(f"label {label!r} has no positives among {len(labelled)} labelled rows")
    if pos == len(labelled):
        raise TrainingError(f"label {label!r} has no negatives among {len(labelled)} labelled rows")
    days = labelled["declaration_date"].dt.normalize().nunique()
    if days < 3:
        raise TrainingError(f"labelled rows span {days} date(s); a time split needs at least 3 distinct dates")


@dataclass
class TimeSplit:
    train_end: pd.Timestamp  # train: date < train_end
    valid_start: pd.Timestamp
    valid_end: pd.Timestamp
    test_start: pd.Timestamp
    gap_days: int

    def masks(self, dates: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = dates.to_numpy()
        train = d < self.train_end.to_datetime64()
        valid = (d >= self.valid_start.to_datetime64()) & (d < self.valid_end.to_datetime64())
        test = d >= self.test_start.to_datetime64()
        return train, valid, test

    def as_params(self) -> dict[str, str]:
        return {"train_end": str(self.train_end.date()), "valid_start": str(self.valid_start.date()),
                "valid_end": str(self.valid_end.date()), "test_start": str(self.test_start.date()),
                "gap_days": str(self.gap_days)}


def temporal_split(dates: pd.Series, valid_frac: float = 0.15, test_frac: float = 0.2,
                   gap_days: int = 7, test_start: str | None = None) -> TimeSplit:
    """Train / validation / test by date with a gap before each later period — never random."""
    d = dates.sort_values()
    lo, hi = d.iloc[0].normalize(), d.iloc[-1].normalize()
    span = (hi - lo).days + 1
    gap = pd.Timedelta(days=gap_days if span > 20 * max(gap_days, 1) else 0)
    if test_start is not None:
        t0 = pd.Timestamp(test_start)
    else:
        t0 = d.iloc[int(len(d) * (1 - test_frac))].normalize()
    before = d[d < t0 - gap]
    v0 = before.iloc[int(len(before) * (1 - valid_frac / (1 - test_frac)))].normalize() if len(before) else t0
    split = TimeSplit(train_end=v0 - gap, valid_start=v0, valid_end=t0 - gap, test_start=t0, gap_days=gap.days)
    tr, va, te = split.masks(dates)
    if test_start is not None and not (lo < t0 <= hi):
        raise TrainingError(f"--test-start {t0.date()} is outside the labelled rows' dates ({lo.date()} .. "
                            f"{hi.date()}): the test period starts after the first day and on or before the last")
    if min(tr.sum(), va.sum(), te.sum()) == 0:
        raise TrainingError(
            f"time split left an empty period (train {tr.sum()}, validation {va.sum()}, test {te.sum()} rows); "
            "more distinct dates are needed")
    return split


VALIDATION_PERIODS = 2  # the validation period and one before it: rounds and groups are chosen on both


def validation_folds(dates: pd.Series, y: np.ndarray, split: TimeSplit,
                     periods: int = VALIDATION_PERIODS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation rows) masks, latest first: the split's validation period, then up to
    ``periods - 1`` earlier periods of as many rows, each trained on the rows dated before it less
    the gap. With a rare label one period holds a few dozen positives, too few to choose the number
    of rounds or the feature groups on; an earlier period is used only when it and its training
    rows both hold positives and negatives.
    """
    tr, va, _ = split.masks(dates)
    folds = [(tr, va)]
    d = dates.to_numpy()
    gap = np.timedelta64(split.gap_days, "D")
    size = int(va.sum())
    end = split.train_end.to_datetime64()  # the next period ends where the later one's training ends
    for _ in range(periods - 1):
        before = np.sort(d[d < end])
        if len(before) < 2 * size:
            break
        start = before[len(before) - size]
        f_va = (d >= start) & (d < end)
        f_tr = d < start - gap
        if not all(m.any() and not m.all() for m in (y[f_va], y[f_tr])):
            break
        folds.append((f_tr, f_va))
        end = start - gap
    return folds

