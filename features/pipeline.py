"""The feature pipeline: every family, fitted once, used unchanged by training, API and batch.

``FeaturePipeline.fit(history, train)`` builds the point-in-time look-ups (the *feature
snapshot*) from the history; ``transform_*`` turn declarations into one float matrix in a fixed
column order. DataFrames (training, batch) and API records (serving) enter through
:mod:`features._columns`, the only place where the two paths differ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from features._base import FeatureFamily
from features._columns import columns_from_frame, columns_from_records
from features.conveyance import ConveyanceOfficeFeatures
from features.goods import GoodsCoverFeatures, GoodsOriginFeatures
from features.history import History
from features.route import RouteFeatures
from features.trader_history import TraderHistoryFeatures
from features.value import ENTITY_MIN_LEVELS, CalendarFeatures, ExtraColumnFeatures, ValueAnomalyFeatures

FAMILIES = ("route", "conveyance_office", "goods_cover", "goods_origin", "trader_history", "value_anomaly", "calendar", "extra")


def split_extras(frame: pd.DataFrame, candidates: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Extra columns → (numeric, categorical) by what their values look like."""
    numeric, categorical = [], []
    for c in candidates:
        s = frame[c]
        if pd.api.types.is_bool_dtype(s) or c.startswith("label_"):
            continue
        num = pd.to_numeric(s, errors="coerce")
        present = s.notna().sum()
        if present and num.notna().sum() >= 0.99 * present and s.nunique() > 30:
            numeric.append(c)
        else:
            categorical.append(c)
    return tuple(numeric), tuple(categorical)


class FeaturePipeline(BaseEstimator):
    """All feature families. Fitted state: ``families_``, ``feature_names_``, ``categorical_``."""

    def __init__(self, extra_numeric: tuple[str, ...] = (), extra_categorical: tuple[str, ...] = (),
                 use_calendar: bool = True, min_count: int = 5, exclude: tuple[str, ...] = (),
                 entity_min_levels: int = ENTITY_MIN_LEVELS):
        self.extra_numeric = extra_numeric
        self.extra_categorical = extra_categorical
        self.use_calendar = use_calendar
        self.min_count = min_count
        self.exclude = exclude  # family names left out (training drops those that do not help)
        self.entity_min_levels = entity_min_levels  # categorical extras with this many values are IDs

    def _families(self) -> list[FeatureFamily]:
        fams: list[FeatureFamily] = [
            RouteFeatures(self.min_count),
            ConveyanceOfficeFeatures(self.min_count),
            GoodsCoverFeatures(self.min_count),
            GoodsOriginFeatures(),
            TraderHistoryFeatures(),
            ValueAnomalyFeatures(),
        ]
        if self.use_calendar:
            fams.append(CalendarFeatures())
        if self.extra_numeric or self.extra_categorical:
            fams.append(ExtraColumnFeatures(self.extra_numeric, self.extra_categorical, self.min_count,
                                            self.entity_min_levels))
        return [f for f in fams if f.name not in self.exclude]

    def fit(self, history: History, train: pd.DataFrame | None = None) -> FeaturePipeline:
        """Build look-ups from ``history``; category vocabularies from ``train`` (default: history)."""
        train = history.declarations if train is None else train
        cols = self.columns(train)
        self._set_families([f.fit(history, cols) for f in self._families()])
        self.cutoff_ = history.cutoff
        self.outcome_delay_days_ = history.outcome_delay_days
        return self

    def _set_families(self, families: list[FeatureFamily]) -> None:
        self.families_ = families
        self.feature_names_ = [n for f in families for n in f.get_feature_names_out()]
        self.categorical_ = [n for f in families for n in f.categorical_features]
        self.family_of_ = {n: f.name for f in families for n in f.get_feature_names_out()}

    # ---- feature groups (what training may leave out) ------------------------------------------
    def groups(self) -> dict[str, list[str]]:
        """Feature names by group: each family, except that every extra column (``extra:<column>``)
        is a group of its own."""
        check_is_fitted(self, "feature_names_")
        out: dict[str, list[str]] = {}
        for n in self.feature_names_:
            fam = self.family_of_[n]
            out.setdefault(f"extra:{n[2:]}" if fam == "extra" else fam, []).append(n)
        return out

    def spec_without(self, dropped: Sequence[str]) -> FeaturePipeline:
        """An unfitted pipeline like this one without the ``dropped`` groups."""
        gone = {g.split(":", 1)[1] for g in dropped if g.startswith("extra:")}
        return FeaturePipeline(
            extra_numeric=tuple(c for c in self.extra_numeric if c not in gone),
            extra_categorical=tuple(c for c in self.extra_categorical if c not in gone),
            use_calendar=self.use_calendar and "calendar" not in dropped, min_count=self.min_count,
            exclude=(*self.exclude, *(g for g in dropped if g != "calendar" and not g.startswith("extra:"))),
            entity_min_levels=getattr(self, "entity_min_levels", ENTITY_MIN_LEVELS))

    def without(self, dropped: Sequence[str]) -> FeaturePipeline:
        """This fitted pipeline without the ``dropped`` groups, sharing its fitted look-ups (no refit):
        the same features as ``spec_without(dropped).fit(...)`` on the same data."""
        check_is_fitted(self, "families_")
        new = self.spec_without(dropped)
        kept = {f.name for f in new._families()}
        families: list[FeatureFamily] = []
        for fam in self.families_:
            if fam.name not in kept:
                continue
            if isinstance(fam, ExtraColumnFeatures):
                fam = fam.narrowed(new.extra_numeric, new.extra_categorical)
            families.append(fam)
        new._set_families(families)
        new.cutoff_ = self.cutoff_
        new.outcome_delay_days_ = self.outcome_delay_days_
        return new

    def refresh(self, history: History) -> FeaturePipeline:
        """New feature snapshot from a newer history (new outcomes, seizures, declarations).

        Only the point-in-time look-ups change; vocabularies and feature order stay those the
        model was trained with.
        """
        check_is_fitted(self, "families_")
        # the snapshot keeps the outcome delay the model was trained with
        history = dataclasses.replace(history, outcome_delay_days=getattr(self, "outcome_delay_days_", 0),
                                      _cache={})
        empty = self.columns(history.declarations.iloc[:0])
        for fam in self.families_:
            fam.refresh(history, empty)
        self.cutoff_ = history.cutoff
        return self

    # ---- input forms ---------------------------------------------------------------------------
    def columns(self, data: pd.DataFrame | Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
        if isinstance(data, pd.DataFrame):
            return columns_from_frame(data, self.extra_numeric, self.extra_categorical)
        return columns_from_records(data, self.extra_numeric, self.extra_categorical)

    # ---- transforms ----------------------------------------------------------------------------
    def transform_columns(self, cols: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        check_is_fitted(self, "families_")
        out: dict[str, np.ndarray] = {}
        for fam in self.families_:
            out.update(fam.transform(cols))
        return out

    def matrix(self, feats: Mapping[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(feats.values()))) if feats else 0
        mat = np.empty((n, len(self.feature_names_)), dtype=np.float64)
        for j, name in enumerate(self.feature_names_):
            mat[:, j] = feats[name]
        return mat

    def transform(self, data: pd.DataFrame | Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Declarations (DataFrame or records) → feature DataFrame (columns ``feature_names_``)."""
        feats = self.transform_columns(self.columns(data))
        return pd.DataFrame({n: feats[n] for n in self.feature_names_})

    def get_feature_names_out(self) -> list[str]:
        check_is_fitted(self, "feature_names_")
        return list(self.feature_names_)

    def unseen_values(self, cols: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
        """Per row: input values (countries, HS code, traders, codes) the snapshot never saw.

        Unseen values are scored (as missing categories / empty history), never rejected.
        """
        n = len(cols["day"])
        per_row: list[dict[str, Any]] = [{} for _ in range(n)]
        for fam in self.families_:
            for col, mask in fam.unseen_values(cols).items():
                for r in np.flatnonzero(mask):
                    per_row[r][col] = cols[col][r]
        return per_row

    def reasons(self, cols: Mapping[str, np.ndarray], feats: Mapping[str, np.ndarray], i: int,
                families: Sequence[str]) -> list[str]:
        by_name = {f.name: f for f in self.families_}
        return [by_name[f].reason(cols, feats, i) for f in families if f in by_name]
