"""Feature-group selection: keep a group (a family, or one extra column) only where it helps on the
validation periods, judged by paired bootstrap resamples."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from training.early_stopping import ValidationFit
from training.metrics import weighted_auc

MIN_AUC_GAIN = 0.0005  # a group is dropped only if validation AUC without it is higher by this much…
DROP_CONFIDENCE = 0.9  # …in at least this share of paired bootstrap resamples of the validation period
BOOTSTRAP_RESAMPLES = 200
MAX_SELECTION_ROUNDS = 3  # backward elimination: groups are re-tested after each round's removals
# an explanation names the three families that weigh most in a score, so at least three stay
MIN_FAMILIES = 3

Fit = Callable[[np.ndarray, list[str], list[str]], ValidationFit]


class GroupedFeatures(Protocol):
    """What selection reads of a fitted feature pipeline."""

    categorical_: list[str]
    family_of_: dict[str, str]

    def groups(self) -> dict[str, list[str]]: ...

    def must_help_groups(self) -> list[str]: ...


@dataclass
class Trial:
    """One configuration: its early-stopped fit, validation AUC, and AUC on each bootstrap resample."""

    fit: ValidationFit
    auc: float
    boot: np.ndarray


@dataclass
class GroupTrials:
    """Fits the columns left when some groups are left out, all on the same bootstrap resamples."""

    X: np.ndarray
    names: list[str]
    pipe: GroupedFeatures
    fit: Fit
    seed: int = 0
    groups: dict[str, list[str]] = field(init=False)
    _weights: list[np.ndarray] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.groups = self.pipe.groups()
        self._rng = np.random.default_rng(self.seed)

    def families_left(self, gone: Sequence[str]) -> int:
        return len({self.pipe.family_of_[n] for g, members in self.groups.items() if g not in gone
                    for n in members})

    def without(self, gone: Sequence[str]) -> Trial:
        cols = [j for j, n in enumerate(self.names) if not any(n in self.groups[g] for g in gone)]
        kept = [self.names[j] for j in cols]
        f = self.fit(self.X[:, cols], kept, [c for c in self.pipe.categorical_ if c in kept])
        if not self._weights:  # the same resamples for every configuration: paired comparisons
            self._weights.extend(self._rng.poisson(1.0, size=(BOOTSTRAP_RESAMPLES, len(yv))) for yv in f.labels)
        boot = np.mean([weighted_auc(yv, sv, w) for yv, sv, w in zip(f.labels, f.scores, self._weights, strict=True)],
                       axis=0)
        return Trial(f, f.auc, boot)


def select_feature_groups(X: np.ndarray, names: list[str], pipe: GroupedFeatures, calendar: str, select: bool,
                          fit: Fit, seed: int = 0) -> tuple[ValidationFit, dict[str, Any]]:
    """Keep a feature group only where it helps, judged on the validation period.

    Every group (a family, or one extra column of a mapping) is left out in turn and the model
    early-stopped again. A group whose family must help (``FeatureFamily.must_help``: the calendar)
    must raise validation AUC to stay (``calendar="auto"``; ``on`` / ``off`` keep or drop it).
    Another group goes only when leaving it out raises validation AUC by at least ``MIN_AUC_GAIN``
    and does so in at least ``DROP_CONFIDENCE`` of paired bootstrap resamples of the validation rows
    (a small validation period rarely removes anything). Validation AUC is the mean over the
    validation periods, and a resample draws the rows of every period. The groups that go are then
    left out together, and that model is kept if it is at least as good as the best single removal
    (otherwise only that one group goes). At least ``MIN_FAMILIES`` families always stay, so every
    explanation can name three. ``fit(X, names, categorical)`` returns the columns' early-stopped
    :class:`ValidationFit`. Returns the chosen fit and the record of the decision
    (``must_help``: the groups the must-help rule applied to).
    """
    trials = GroupTrials(X, names, pipe, fit, seed)
    must_help = [g for g in pipe.must_help_groups() if g in trials.groups]
    dropped = list(must_help) if calendar == "off" else []
    current = trials.without(dropped)
    record: dict[str, Any] = {"valid_auc_all": current.auc, "rounds": [], "dropped": list(dropped),
                              "must_help": must_help}
    for _ in range(MAX_SELECTION_ROUNDS):
        candidates = [g for g in trials.groups if g not in dropped
                      and (calendar != "on" if g in must_help else select)
                      and trials.families_left([*dropped, g]) >= MIN_FAMILIES]
        if not candidates:
            break
        rnd, drop, current = _selection_round(trials, current, dropped, candidates, must_help, record)
        record["rounds"].append(rnd)
        if not drop:
            break
        dropped += drop
    # first-round figures, as the must-help rule and the run's metrics report them
    first = record["rounds"][0] if record["rounds"] else {}
    record["valid_auc_without"] = first.get("valid_auc_without", {})
    record["confidence_without"] = first.get("confidence_without", {})
    record["dropped"] = dropped
    record["valid_auc_selected"] = current.auc
    return current.fit, record


def _selection_round(trials: GroupTrials, current: Trial, dropped: list[str], candidates: list[str],
                     must_help: list[str], record: dict[str, Any]) -> tuple[dict[str, Any], list[str], Trial]:
    """Leave each candidate out in turn; returns the round's record, the groups that go and the new fit."""
    results = {g: trials.without([*dropped, g]) for g in candidates}
    rnd: dict[str, Any] = {
        "valid_auc": current.auc,
        "valid_auc_without": {g: t.auc for g, t in results.items()},
        "confidence_without": {g: float(np.nanmean(t.boot > current.boot)) for g, t in results.items()},
    }
    for g in must_help:
        if g in results:
            record[f"valid_auc_with_{g}"] = current.auc
            record[f"valid_auc_without_{g}"] = results[g].auc
    drop = [g for g, t in results.items()
            if (t.auc >= current.auc if g in must_help else
                t.auc >= current.auc + MIN_AUC_GAIN and rnd["confidence_without"][g] >= DROP_CONFIDENCE)]
    if not drop:
        return rnd, drop, current
    best_single = max(drop, key=lambda g: results[g].auc)
    chosen = results[best_single]
    if trials.families_left([*dropped, *drop]) < MIN_FAMILIES:
        drop = [best_single]  # reasons need families to name
    if len(drop) > 1:
        together = trials.without([*dropped, *drop])
        rnd["valid_auc_without_dropped"] = together.auc
        if together.auc >= chosen.auc:
            chosen = together
        else:
            drop = [best_single]
    rnd["dropped"] = drop
    return rnd, drop, chosen
