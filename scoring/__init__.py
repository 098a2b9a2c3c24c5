"""Scoring core shared by the API and batch scoring: the fitted model, lanes and selection."""

from scoring.lanes import LanePolicy, LaneSettings
from scoring.model import Calibrator, Reason, RiskModel, Scored
from scoring.ranking import LaneThresholds, Selection, assign_lanes, capacity_count, select_for_inspection
from scoring.results import ReasonsFor, ScoreTable, score_table

__all__ = [
    "Calibrator",
    "LanePolicy",
    "LaneSettings",
    "LaneThresholds",
    "Reason",
    "ReasonsFor",
    "ScoreTable",
    "RiskModel",
    "Scored",
    "Selection",
    "assign_lanes",
    "capacity_count",
    "score_table",
    "select_for_inspection",
]
