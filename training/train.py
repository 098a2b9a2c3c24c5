"""Training in one call: kept for callers of ``training.train``; the steps live in
:mod:`training.fit`, :mod:`training.selection`, :mod:`training.baselines` and :mod:`training.tracking`."""

from __future__ import annotations

from training.data import TrainingError
from training.early_stopping import ValidationFit, early_stop_on_periods
from training.fit import DEFAULT_PARAMS, TrainResult, fit_model
from training.selection import select_feature_groups
from training.tracking import train_and_log

__all__ = ["DEFAULT_PARAMS", "TrainResult", "TrainingError", "ValidationFit", "early_stop_on_periods", "fit_model",
           "select_feature_groups", "train_and_log"]
