"""The lane policy: one configuration object for the API and batch scoring.

Lanes come from fixed calibrated-score thresholds (``by="score"``) or from the scores that put given
shares of recent traffic in red and in red-or-yellow (``by="capacity"``). :class:`LanePolicy` holds
the choice, its defaults and its validation; :class:`LaneSettings` reads it from the environment
(``RISKPROF_LANES_BY``, ``RISKPROF_LANE_RED``, ``RISKPROF_LANE_YELLOW``, ``RISKPROF_LANE_RED_SHARE``,
``RISKPROF_LANE_YELLOW_SHARE``), so the API (whose settings extend it) and ``riskprof score`` agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from scoring.ranking import LaneThresholds, thresholds_at_shares

__all__ = ["LanePolicy", "LaneSettings", "LanesBy"]

LanesBy = Literal["score", "capacity"]


@dataclass(frozen=True)
class LanePolicy:
    """How items get their lane: fixed thresholds, or thresholds at shares of recent traffic."""

    by: LanesBy = "score"
    red: float = LaneThresholds.red  # red from this calibrated score (by="score")
    yellow: float = LaneThresholds.yellow  # yellow from this score (by="score")
    red_share: float = 0.02  # share of recent traffic in red (by="capacity")
    yellow_share: float = 0.08  # share of recent traffic in red or yellow (by="capacity")

    def __post_init__(self) -> None:
        if self.by not in ("score", "capacity"):
            raise ValueError(f"lanes_by must be score or capacity, got {self.by!r}")
        for name in ("red", "yellow", "red_share", "yellow_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"lane {name} must be within 0-1, got {value}")
        if self.by == "score":
            LaneThresholds(red=self.red, yellow=self.yellow)  # raises ValueError unless red ≥ yellow
        elif self.red_share > self.yellow_share:
            raise ValueError(f"lane shares must satisfy red ≤ yellow (red is the riskier, smaller group), got "
                             f"lane_red_share={self.red_share}, lane_yellow_share={self.yellow_share}")

    @property
    def fixed(self) -> LaneThresholds:
        """The fixed score thresholds (used as they are when ``by="score"``)."""
        return LaneThresholds(red=self.red, yellow=self.yellow)

    @property
    def shares(self) -> tuple[float, float] | None:
        """(red share, red-or-yellow share) when lanes follow recent traffic, else None."""
        return (self.red_share, self.yellow_share) if self.by == "capacity" else None

    def thresholds(self, reference_scores: np.ndarray | None = None) -> LaneThresholds:
        """The thresholds for a model whose recent traffic scored ``reference_scores``.

        By capacity without reference scores (a model that kept none) there is no traffic to take
        shares of, so the fixed thresholds apply.
        """
        if self.by == "score" or reference_scores is None or not len(reference_scores):
            return self.fixed
        return thresholds_at_shares(reference_scores, self.red_share, self.yellow_share)


_DEFAULT = LanePolicy()


class LaneSettings(BaseSettings):
    """The lane policy from the environment (prefix ``RISKPROF_``); defaults are :class:`LanePolicy`'s."""

    model_config = SettingsConfigDict(env_prefix="RISKPROF_", extra="ignore")

    lanes_by: LanesBy = Field(
        default=_DEFAULT.by, description="score: fixed score thresholds; capacity: thresholds at the shares of recent traffic")
    lane_red: float = Field(default=_DEFAULT.red, ge=0, le=1,
                            description="red lane from this calibrated score (lanes_by=score)")
    lane_yellow: float = Field(default=_DEFAULT.yellow, ge=0, le=1,
                               description="yellow lane from this score (lanes_by=score)")
    lane_red_share: float = Field(default=_DEFAULT.red_share, ge=0, le=1,
                                  description="share of recent traffic in red (lanes_by=capacity)")
    lane_yellow_share: float = Field(default=_DEFAULT.yellow_share, ge=0, le=1,
                                     description="share of recent traffic in red or yellow (lanes_by=capacity)")

    @model_validator(mode="after")
    def _check_lanes(self) -> LaneSettings:
        _ = self.lanes  # LanePolicy raises ValueError (red ≥ yellow, or red share ≤ yellow share)
        return self

    @property
    def lanes(self) -> LanePolicy:
        return LanePolicy(by=self.lanes_by, red=self.lane_red, yellow=self.lane_yellow,
                          red_share=self.lane_red_share, yellow_share=self.lane_yellow_share)
