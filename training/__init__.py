"""Training: labelled data and time splits, feature-group selection, fitting with early stopping and
calibration, baselines, metrics, and tracking in MLflow.

The public names are listed in ``__all__`` and load on first use, so that reading a training set
does not import LightGBM or MLflow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.baselines import baseline_metrics, rule_score
    from training.data import (
        TimeSplit,
        TrainingError,
        TrainingSet,
        load_training_set,
        temporal_split,
        validation_folds,
    )
    from training.early_stopping import ValidationFit, early_stop_on_periods
    from training.fit import DEFAULT_PARAMS, TrainResult, fit_model
    from training.lifecycle import evaluate_model, refresh_features
    from training.metrics import calibration_curve, ipw_hit_rate, ranking_metrics, top_k, weighted_auc
    from training.novelty import novelty, seen_mask, split_metrics
    from training.promotion import PromotionDecision, preview_promotion, promote, promotion_gate
    from training.retrain import RetrainResult, holdout_split, load_retraining_set, retrain
    from training.selection import select_feature_groups
    from training.tracking import train_and_log

__all__ = [
    "DEFAULT_PARAMS", "PromotionDecision", "RetrainResult", "TimeSplit", "TrainResult", "TrainingError",
    "TrainingSet", "ValidationFit", "baseline_metrics", "calibration_curve", "early_stop_on_periods",
    "evaluate_model", "fit_model", "holdout_split", "ipw_hit_rate", "load_retraining_set", "load_training_set",
    "novelty", "preview_promotion", "promote", "promotion_gate", "ranking_metrics", "refresh_features",
    "retrain", "rule_score", "seen_mask", "select_feature_groups", "split_metrics", "temporal_split", "top_k",
    "train_and_log", "validation_folds", "weighted_auc",
]

# where the names live, light modules first: loading data never imports LightGBM or MLflow
_MODULES = ("training.data", "training.metrics", "training.novelty", "training.early_stopping",
            "training.selection", "training.baselines", "training.fit", "training.tracking", "training.lifecycle",
            "training.promotion", "training.retrain")
_MISSING = object()


def __getattr__(name: str) -> Any:
    if name in __all__:
        for module in _MODULES:
            value = getattr(importlib.import_module(module), name, _MISSING)
            if value is not _MISSING:
                globals()[name] = value  # later look-ups skip this function
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
