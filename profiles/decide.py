"""The one decision every scoring path makes after the model has scored: which rules match, the lane
after them, and (given a capacity) who is selected for inspection, in the documented order.

``POST /v1/score``, ``POST /v1/manifests/rank`` and batch scoring all call :func:`decide` (or, for a
batch scored in chunks, its two halves: :func:`decide_rules` per chunk, then :func:`select_decided`
once over the whole manifest after the exact ranking), so the same declarations get the same
matches, lanes and selections whatever the path.

Capacity is filled in this order (``scoring.ranking.select_with_rules``): every item a rule selects
(selection ``rule``, probability 1, even beyond capacity), then the model's ranking, then the random
share among the rest. A rule never changes a risk score.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from profiles.apply import ProfileDecision, apply_profiles
from profiles.match import ProfileMatches, RuleSet, match_profiles
from scoring.ranking import RULE_SELECTION_NAMES, rank_order, select_with_rules

__all__ = ["RULE_SELECTION_NAMES", "Decision", "alert_records", "decide", "decide_rules", "no_matches",
           "select_decided"]


@dataclass(frozen=True)
class Decision:
    """Per item: the model's risk (unchanged), the lane after rules, whether a rule selects it or
    raises an alert, and, when a capacity was given, the rank by the model, the selection code
    (``RULE_SELECTION_NAMES``: 0 none, 1 model, 2 random, 3 rule) and its probability."""

    rules: ProfileDecision
    rank: np.ndarray | None = None
    selection: np.ndarray | None = None
    probability: np.ndarray | None = None

    @property
    def risk(self) -> np.ndarray:
        return self.rules.risk

    @property
    def lane(self) -> np.ndarray:
        return self.rules.lane

    @property
    def forced(self) -> np.ndarray:
        return self.rules.select

    @property
    def alert(self) -> np.ndarray:
        return self.rules.alert

    @property
    def matches(self) -> ProfileMatches:
        return self.rules.matches

    @cached_property
    def selection_names(self) -> np.ndarray:
        if self.selection is None:
            raise ValueError("no selection: decide() was called without a capacity")
        return np.array(RULE_SELECTION_NAMES, dtype=object)[self.selection]

    @cached_property
    def rule_hits(self) -> np.ndarray:
        """Per item, a tuple of ``RuleHit(kind, id, version, criterion)``."""
        return self.rules.rule_hits

    def hits_json(self, i: int) -> list[dict[str, Any]]:
        """Item ``i``'s rule hits as JSON: ``kind, id, version, criterion`` (the criterion is the reason)."""
        return [h._asdict() for h in self.rule_hits[i]]



def alert_records(decision: ProfileDecision | Decision, declaration_ids: np.ndarray, source: str,
                  offset: int = 0) -> list[dict[str, Any]]:
    """One record per (declaration, alerting rule version) for ``ProfileStore.create_alerts``: the
    rows whose matched rules raise an alert (``offset``: the first row's index in ``declaration_ids``,
    for a batch passing a chunk's decision)."""
    rules = decision.rules if isinstance(decision, Decision) else decision
    rows = np.flatnonzero(rules.alert)
    if not len(rows):
        return []
    alerting = rules.matches.ruleset.alerting
    out = []
    for i in rows.tolist():
        for h in rules.rule_hits[i]:
            if (h.kind, h.id, h.version) in alerting:
                out.append({"declaration_id": str(declaration_ids[offset + i]), "kind": h.kind, "rule_id": h.id,
                            "version": h.version, "criterion": h.criterion, "risk_score": float(rules.risk[i]),
                            "lane": str(rules.lane[i]), "source": source})
    return out


def no_matches(n: int, rules: RuleSet) -> ProfileMatches:
    """Nothing matched (no active rule): skips building the field indexes."""
    empty = np.zeros(0, dtype=np.int64)
    return ProfileMatches(n, rules.rules, empty, empty, np.zeros(0, dtype=object), rules)


def decide_rules(data: pd.DataFrame | Mapping[str, np.ndarray], risk: np.ndarray, model_lane: np.ndarray,
                 rules: RuleSet, as_of: dt.date | None = None,
                 scored: Mapping[str, Any] | None = None) -> ProfileDecision:
    """Rule matches and lanes of one set of rows (a batch calls this per chunk: rows are independent).

    ``scored``: the columns the model scored from ``data`` (``ScoreTable.columns``): the key columns
    the feature pipeline factorized are reused rather than factorized again."""
    risk = np.asarray(risk, dtype=np.float64)
    model_lane = np.asarray(model_lane)  # fixed-width text as the model gives it compares in C; objects work too
    matches = (match_profiles(data, rules, as_of=as_of, scored=scored) if rules.rules and len(risk)
               else no_matches(len(risk), rules))
    return apply_profiles(matches, risk, model_lane)


def select_decided(forced: np.ndarray, order: np.ndarray, capacity: str | int | float, random_share: float = 0.0,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rank, selection code, probability) over the whole manifest: rule selections first, then
    ``order`` (item indices, riskiest first; ties broken by id), then the random share."""
    return select_with_rules(order, forced, capacity, random_share=random_share, seed=seed)


def decide(data: pd.DataFrame | Mapping[str, np.ndarray], risk: np.ndarray, model_lane: np.ndarray,
           rules: RuleSet, capacity: str | int | float | None = None, random_share: float = 0.0, seed: int = 0,
           *, ids: np.ndarray | None = None, order: np.ndarray | None = None,
           as_of: dt.date | None = None) -> Decision:
    """Rules applied to scored declarations, and the selection when ``capacity`` is given.

    ``data``: a validated declaration frame or the canonical columns the model scored
    (``RiskModel.pipeline.columns``); ``risk``/``model_lane``: the model's scores and lanes; ``rules``: the
    pinned set (:func:`profiles.compile_rules`). The ranking is ``order`` when given (a batch's exact
    order), else descending risk with ties broken by ``ids`` (``scoring.ranking.rank_order``).
    """
    decided = decide_rules(data, risk, model_lane, rules, as_of)
    if capacity is None:
        return Decision(decided)
    if order is None:
        if ids is None:
            raise ValueError("a selection needs the ranking: give ids (ties broken by id) or order")
        order = rank_order(decided.risk, np.asarray(ids, dtype=object))
    rank, selection, probability = select_decided(decided.select, order, capacity, random_share, seed)
    return Decision(decided, rank, selection, probability)
