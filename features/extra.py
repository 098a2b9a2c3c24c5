"""Extra columns: source columns a mapping keeps (e.g. the Korean procedural codes) as features."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from features._asof import AsOfTable
from features._base import (
    CategoryCodes,
    Columns,
    FamilyParams,
    FeatureFamily,
    GlobalRate,
    counted,
    global_rate,
    outcome_stats,
    outcome_table,
)
from features._columns import keys_of
from features.history import History

#: a categorical extra column with at least this many distinct values in the training rows names
#: parties (a seller, a shipper), not categories: as a LightGBM categorical it overfits (thousands of
#: levels, most seen a few times), so its feature is the party's past hit rate instead
ENTITY_MIN_LEVELS = 1000

#: each extra column is a feature group of its own, named ``extra:<column>``
GROUP_PREFIX = "extra:"


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


def dropped_columns(dropped: Collection[str]) -> set[str]:
    """The extra columns among dropped feature groups."""
    return {g.removeprefix(GROUP_PREFIX) for g in dropped if g.startswith(GROUP_PREFIX)}


class ExtraColumnFeatures(FeatureFamily):
    """Source columns a mapping keeps (e.g. the Korean procedural codes) as generic features.

    Numeric columns are used as they are, categorical ones as category codes, except identifier
    columns (``entity_min_levels`` distinct training values or more, e.g. a seller ID): their
    feature is the smoothed hit rate of that value among outcomes known before the declaration
    date, as for importers and declarants.
    """

    name = "extra"
    label = "other declared fields"
    # (models pickled before identifier columns existed have none)
    entity_: tuple[str, ...] = ()
    entity_tables_: dict[str, AsOfTable] = {}  # noqa: RUF012 - read-only default
    global_: GlobalRate | None = None

    def __init__(self, numeric: tuple[str, ...] = (), categorical: tuple[str, ...] = (), min_count: int = 5,
                 entity_min_levels: int = ENTITY_MIN_LEVELS):
        self.numeric = numeric
        self.categorical = categorical
        self.min_count = min_count
        self.entity_min_levels = entity_min_levels

    @classmethod
    def configured(cls, params: FamilyParams) -> ExtraColumnFeatures | None:
        if not (params.extra_numeric or params.extra_categorical):
            return None
        return cls(params.extra_numeric, params.extra_categorical, params.min_count, params.entity_min_levels)

    def names_out(self) -> tuple[str, ...]:
        return tuple(f"x_{c}" for c in (*self.numeric, *self.categorical))

    def categorical_out(self) -> tuple[str, ...]:
        return tuple(f"x_{c}" for c in self.categorical if c not in self.entity_)

    def _fit(self, history: History, train: Columns) -> None:
        levels = {c: len({v for v in train[c] if v is not None}) for c in self.categorical}
        self.entity_ = tuple(c for c in self.categorical if levels[c] >= self.entity_min_levels)
        self.codes_ = {c: CategoryCodes(train[c], self.min_count) for c in self.categorical if c not in self.entity_}
        self._fit_history(history)

    def _fit_history(self, history: History) -> None:
        ev = history.outcome_events()
        self.entity_tables_ = {c: outcome_table(history.outcome_values(c), ev) for c in self.entity_}
        self.global_ = global_rate(history) if self.entity_ else None

    def refresh(self, history: History, empty: Columns) -> ExtraColumnFeatures:
        """New look-ups of the identifier columns; which columns are identifiers and the category
        vocabularies stay those of training."""
        check_is_fitted(self, "feature_names_")
        self._fit_history(history)
        return self

    def groups(self) -> dict[str, list[str]]:
        return {f"{GROUP_PREFIX}{n.removeprefix('x_')}": [n] for n in self.get_feature_names_out()}

    def without_groups(self, dropped: Collection[str]) -> ExtraColumnFeatures | None:
        if self.name in dropped:
            return None
        gone = dropped_columns(dropped)
        if not gone:
            return self
        numeric = tuple(c for c in self.numeric if c not in gone)
        categorical = tuple(c for c in self.categorical if c not in gone)
        return self.narrowed(numeric, categorical) if numeric or categorical else None

    def narrowed(self, numeric: tuple[str, ...], categorical: tuple[str, ...]) -> ExtraColumnFeatures:
        """This fitted family restricted to some of its columns (their look-ups kept, no refit)."""
        new = ExtraColumnFeatures(numeric, categorical, self.min_count, self.entity_min_levels)
        new.entity_ = tuple(c for c in self.entity_ if c in categorical)
        new.codes_ = {c: self.codes_[c] for c in categorical if c not in new.entity_}
        new.entity_tables_ = {c: self.entity_tables_[c] for c in new.entity_}
        new.global_ = self.global_ if new.entity_ else None
        new.feature_names_ = new.names_out()
        new.categorical_ = new.categorical_out()
        return new

    def transform(self, cols: Columns) -> dict[str, np.ndarray]:
        f = {f"x_{c}": np.asarray(cols[c], dtype=np.float64) for c in self.numeric}
        f.update({f"x_{c}": enc.encode(keys_of(cols, c)) for c, enc in self.codes_.items()})
        if self.entity_ and self.global_ is not None:
            day = cols["day"]
            prior = self.global_.at(day)
            for c in self.entity_:
                f[f"x_{c}"] = outcome_stats(self.entity_tables_[c], keys_of(cols, c), day, prior,
                                            ("hit_rate",))["hit_rate"]
        return {n: f[n] for n in self.feature_names_}

    def reason(self, cols: Columns, feats, i: int) -> str:
        shown = []
        for c in (*self.numeric, *self.categorical)[:3]:
            if c in self.entity_ and cols[c][i] is not None:
                h = self.entity_tables_[c].lookup(cols[c][i:i + 1], cols["day"][i:i + 1])
                shown.append(f"{c} {cols[c][i]}: {counted(int(h['hit'][0]), 'hit')} in "
                             f"{counted(int(h['insp'][0]), 'past inspection')}")
            else:
                shown.append(f"{c}={cols[c][i]}")
        return f"declared fields ({', '.join(shown)})"
