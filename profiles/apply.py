"""What matched rules do to a scored batch: lanes, selection and alerts, never the risk score."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from profiles.match import ProfileMatches

LANE_SEVERITY = ("green", "yellow", "red")  # a rule can only raise a lane
_LANES = np.array(LANE_SEVERITY)


@dataclass(frozen=True)
class ProfileDecision:
    """Per row: the model's score (as given), the lane after rules, whether a rule selects the item or
    raises an alert, and the rule hits (ids, versions and criteria) as reasons."""

    risk: np.ndarray
    lane: np.ndarray
    select: np.ndarray
    alert: np.ndarray
    matches: ProfileMatches

    @cached_property
    def rule_hits(self) -> np.ndarray:
        """Per row, a tuple of ``RuleHit`` (built on first use: a batch can write
        ``matches.hits_csr()`` as columns instead of a Python object per hit)."""
        return self.matches.rule_hits()


def apply_profiles(matches: ProfileMatches, risk: np.ndarray, model_lane: np.ndarray) -> ProfileDecision:
    """The lane is the more severe of the model's lane and every matched rule's lane (red > yellow >
    green); ``select``/``alert`` are set where any matched rule says so. ``risk`` is returned as it
    came: a profile changes lane, selection and reasons, never a score."""
    n = matches.n_rows
    if len(risk) != n or len(model_lane) != n:
        raise ValueError(f"risk ({len(risk)}) and lanes ({len(model_lane)}) must have one value per row ({n})")
    model_lane = np.asarray(model_lane)
    severity = np.asarray(model_lane == "yellow", dtype=np.int8) + 2 * np.asarray(model_lane == "red", dtype=np.int8)
    select = np.zeros(n, dtype=bool)
    alert = np.zeros(n, dtype=bool)
    rs, rows, rule = matches.ruleset, matches.hit_row, matches.hit_rule
    np.maximum.at(severity, rows, rs.lane_of[rule])
    select[rows[rs.select_of[rule]]] = True
    alert[rows[rs.alert_of[rule]]] = True
    lane = _LANES[severity]  # fixed-width text (not objects): a batch compares and converts it in C
    frozen = risk.view()
    frozen.flags.writeable = False
    return ProfileDecision(frozen, lane, select, alert, matches)
